//! Conda ↔ PyPI names.
//!
//! Most conda packages of Python projects carry the PyPI name, lowercased; both sides are
//! compared after PEP 503 normalization (`typing_extensions` = `typing-extensions`). The
//! exceptions are in [`KNOWN_DIFFERENCES`], gathered from conda-forge/anaconda recipes (the
//! recipe's `name:` against the PyPI project it packages); a name not in the table maps to
//! itself.

use db_format::types::normalize_name;

/// (conda name, PyPI name) pairs that differ beyond normalization.
pub const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("pytorch", "torch"),
    ("pytorch-cpu", "torch"),
    ("msgpack-python", "msgpack"),
    ("py-opencv", "opencv-python"),
    ("py-xgboost", "xgboost"),
    ("pytables", "tables"),
    ("python-graphviz", "graphviz"),
    ("matplotlib-base", "matplotlib"),
    ("pyqt", "pyqt5"),
    ("tensorflow-base", "tensorflow"),
    ("ruamel_yaml", "ruamel-yaml"),
    ("ruamel.yaml", "ruamel-yaml"),
    ("pillow-simd", "pillow"),
    ("tensorflow-mkl", "tensorflow"),
];

fn normalized(name: &str) -> String {
    normalize_name(name).map_or_else(|_| name.to_ascii_lowercase(), |name| name.to_string())
}

/// The PyPI name a conda package stands for (normalized).
pub fn pypi_name(conda: &str) -> String {
    let conda = conda.to_ascii_lowercase();
    KNOWN_DIFFERENCES
        .iter()
        .find(|(from, _)| *from == conda)
        .map_or_else(|| normalized(&conda), |(_, pypi)| normalized(pypi))
}

/// The conda names that may package a PyPI project, table entries first, then the name itself.
pub fn conda_names(pypi: &str) -> Vec<String> {
    let pypi = normalized(pypi);
    let mut names: Vec<String> = KNOWN_DIFFERENCES
        .iter()
        .filter(|(_, to)| normalized(to) == pypi)
        .map(|(from, _)| (*from).to_string())
        .collect();
    if !names.contains(&pypi) {
        names.push(pypi);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_normalization_map_both_ways() {
        assert_eq!(pypi_name("pytorch"), "torch");
        assert_eq!(pypi_name("msgpack-python"), "msgpack");
        assert_eq!(pypi_name("typing_extensions"), "typing-extensions");
        assert_eq!(pypi_name("NumPy"), "numpy");
        assert_eq!(conda_names("torch"), ["pytorch", "pytorch-cpu", "torch"]);
        assert_eq!(conda_names("msgpack"), ["msgpack-python", "msgpack"]);
        assert_eq!(
            conda_names("ruamel.yaml"),
            ["ruamel_yaml", "ruamel.yaml", "ruamel-yaml"]
        );
        assert_eq!(conda_names("scipy"), ["scipy"]);
    }
}

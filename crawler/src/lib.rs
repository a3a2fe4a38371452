//! placeholder until the crawler lands

//! Unit tests of the MongoDB language's find parts (sort, positional match, projection).

mod positional;
mod sort;

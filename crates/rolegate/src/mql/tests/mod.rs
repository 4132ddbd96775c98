//! Unit tests of the MongoDB language's find parts (sort, positional match, projection).

mod client_query;
mod positional;
mod projection;
mod sort;

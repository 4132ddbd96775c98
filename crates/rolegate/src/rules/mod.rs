//! The validated rule set: the model ([`model`]) and its construction from raw rule JSON with all
//! validation and warnings ([`build`]).

pub mod build;
pub mod model;
pub mod visit;

pub use model::*;
pub use visit::ValueRefs;

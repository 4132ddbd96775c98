#![doc = include_str!("../README.md")]

pub mod case;
pub mod config;
pub mod context;
pub mod error;
pub mod expr;
pub mod outcome;
pub mod query;
pub mod reference;
pub mod rules;
pub mod schema;
pub mod value;

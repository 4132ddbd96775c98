//! The nom parser for expansion strings (`%%user.custom_data.group`) → [`Expansion`](super::Expansion).

//! Stage: load. Input: an app directory (both layouts) or one rule file. Output: the raw JSON of
//! every rule-bearing file, tagged with its kind and app-relative path, for [`crate::rules::build`].

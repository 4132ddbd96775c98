//! Stage: table names. Input: a [`Namespace`] (any database and collection name: dots,
//! slashes, `$`, spaces, any Unicode). Output: the names of its two redb tables, and back from a
//! table name to its namespace.
//!
//! A name is percent-encoded: every byte other than an ASCII letter, digit, `-` or `_` becomes
//! `%XX`, so the encoded names contain neither `/` nor `.`, and
//! `docs/<database>/<collection>` names one collection without ambiguity (`x.a` / `b` and
//! `x` / `a.b` are two collections, although both display as `x.a.b`). The documents table is
//! `docs/…`, the `_id` index `ids/…`.

use rolegate::ops::Namespace;

/// The prefix of documents tables.
const DOCUMENTS: &str = "docs/";
/// The prefix of `_id` index tables.
const IDS: &str = "ids/";

/// The name of the documents table of `ns`.
pub fn documents_table(ns: &Namespace) -> String {
    format!("{DOCUMENTS}{}", encoded(ns))
}

/// The name of the `_id` index table of `ns`.
pub fn ids_table(ns: &Namespace) -> String {
    format!("{IDS}{}", encoded(ns))
}

/// The namespace whose documents table is `table`; `None` for any other table.
pub fn namespace_of(table: &str) -> Option<Namespace> {
    let rest = table.strip_prefix(DOCUMENTS)?;
    let (database, collection) = rest.split_once('/')?;
    Some(Namespace::new(decode(database)?, decode(collection)?))
}

fn encoded(ns: &Namespace) -> String {
    format!("{}/{}", encode(&ns.database), encode(&ns.collection))
}

fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_never_collide() {
        let names = [
            Namespace::new("x.a", "b"),
            Namespace::new("x", "a.b"),
            Namespace::new("données", "σ/$cmd"),
            Namespace::new("", ""),
            Namespace::new("%41", "A"),
            Namespace::new("A", "%41"),
            Namespace::new("a b", "c\u{0}d"),
        ];
        let tables: Vec<String> = names.iter().map(documents_table).collect();
        for (i, (ns, table)) in names.iter().zip(&tables).enumerate() {
            assert_eq!(namespace_of(table).as_ref(), Some(ns), "{table}");
            assert!(!tables[..i].contains(table), "{table} is not unique");
            assert!(namespace_of(&ids_table(ns)).is_none());
        }
        assert_eq!(documents_table(&names[0]), "docs/x%2Ea/b");
        assert!(namespace_of("docs/%4").is_none());
        assert!(namespace_of("docs/%ZZ/a").is_none());
        assert!(namespace_of("other").is_none());
    }
}

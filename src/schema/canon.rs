//! Canonical form and the two schema hashes.
//!
//! - [`Schema::semantic_hash`] covers what decides behaviour: the model with
//!   every exact `sql` text left out, so whitespace, comments, keyword case,
//!   identifier quoting, and the verbatim text `ALTER TABLE ADD COLUMN`
//!   splices into the stored `CREATE TABLE`, do not count. The names of
//!   constraint indexes (`sqlite_autoindex_t_2`) do not count either: SQLite
//!   numbers them by constraint order. Names of objects and columns count as
//!   written, case included, because clients see them (`SELECT *`).
//! - [`Schema::exact_hash`] covers the exact `CREATE` texts, in canonical
//!   order.
//!
//! Both are BLAKE3 over domain-separated bytes: the store codec's encoding of
//! a canonical projection. A change to the model's shape changes semantic
//! hashes, so hashes are compared only between schemas read by the same
//! migsnap version (stored schemas are re-hashed, never their hashes kept).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use bincode::Encode;
use bincode::enc::Encoder;
use bincode::error::EncodeError;
use migsnap_store::codec;

use super::model::{
    Check, ForeignKey, Index, IndexOrigin, Schema, Table, Trigger, Unique, View, fold,
};

/// A BLAKE3 hash of a schema, semantic or exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaHash([u8; 32]);

impl SchemaHash {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for SchemaHash {
    /// Lowercase hex; a precision shortens it (`{:.12}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&blake3::Hash::from_bytes(self.0).to_hex())
    }
}

/// A schema hash that is not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("not a schema hash (64 hex digits): {0:?}")]
pub struct ParseSchemaHashError(String);

impl FromStr for SchemaHash {
    type Err = ParseSchemaHashError;

    /// The inverse of [`Display`](fmt::Display) at full length: how a hash
    /// recorded as text (a snapshot header) is read back.
    fn from_str(text: &str) -> Result<SchemaHash, ParseSchemaHashError> {
        blake3::Hash::from_hex(text)
            .map(|hash| SchemaHash(*hash.as_bytes()))
            .map_err(|_| ParseSchemaHashError(text.to_owned()))
    }
}

impl serde::Serialize for SchemaHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

const SEMANTIC_DOMAIN: &[u8] = b"migsnap schema semantic 1\0";
const EXACT_DOMAIN: &[u8] = b"migsnap schema exact 1\0";

fn folded(names: &[String]) -> Vec<String> {
    names.iter().map(|n| fold(n)).collect()
}

fn unique_order(a: &Unique, b: &Unique) -> Ordering {
    folded(&a.columns)
        .cmp(&folded(&b.columns))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.on_conflict.cmp(&b.on_conflict))
}

fn foreign_key_order(a: &ForeignKey, b: &ForeignKey) -> Ordering {
    folded(&a.columns)
        .cmp(&folded(&b.columns))
        .then_with(|| fold(&a.target_table).cmp(&fold(&b.target_table)))
        .then_with(|| folded(&a.target_columns).cmp(&folded(&b.target_columns)))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| codec::encode(a).cmp(&codec::encode(b)))
}

/// Puts the order-free parts of a schema in canonical order: constraints of
/// each table, and the excluded objects. Capture calls it; call it after
/// building or editing a model by hand.
pub fn canonicalise(schema: &mut Schema) {
    for table in schema.tables.values_mut() {
        canonicalise_table(table);
    }
    schema.excluded.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then_with(|| fold(&a.name).cmp(&fold(&b.name)))
    });
}

fn check_order(a: &Check, b: &Check) -> Ordering {
    a.expression
        .cmp(&b.expression)
        .then_with(|| a.name.cmp(&b.name))
}

fn canonicalise_table(table: &mut Table) {
    table.uniques.sort_by(unique_order);
    table.checks.sort_by(check_order);
    table.foreign_keys.sort_by(foreign_key_order);
}

fn is_canonical(table: &Table) -> bool {
    let sorted = |order: Ordering| order != Ordering::Greater;
    table
        .uniques
        .is_sorted_by(|a, b| sorted(unique_order(a, b)))
        && table.checks.is_sorted_by(|a, b| sorted(check_order(a, b)))
        && table
            .foreign_keys
            .is_sorted_by(|a, b| sorted(foreign_key_order(a, b)))
}

/// What the semantic hash covers, in canonical order: every field but the
/// exact `sql` texts, and constraint indexes without their names.
struct Semantic<'a> {
    tables: Vec<Cow<'a, Table>>,
    indexes: Vec<&'a Index>,
    constraint_indexes: Vec<&'a Index>,
    views: Vec<&'a View>,
    triggers: Vec<&'a Trigger>,
}

fn encode_list<T, E: Encoder>(
    items: &[T],
    encoder: &mut E,
    mut each: impl FnMut(&T, &mut E) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    items.len().encode(encoder)?;
    items.iter().try_for_each(|item| each(item, encoder))
}

impl Encode for Semantic<'_> {
    fn encode<E: Encoder>(&self, e: &mut E) -> Result<(), EncodeError> {
        encode_list(&self.tables, e, |t, e| {
            (&t.name, &t.columns, &t.primary_key, &t.uniques, &t.checks).encode(e)?;
            (&t.foreign_keys, &t.options, &t.virtual_table, &t.unparsed).encode(e)
        })?;
        encode_list(&self.indexes, e, |i, e| {
            (&i.name, &i.table, &i.unique, &i.parts, &i.predicate).encode(e)?;
            (&i.origin, &i.unparsed).encode(e)
        })?;
        encode_list(&self.constraint_indexes, e, |i, e| {
            (
                &i.table,
                &i.unique,
                &i.parts,
                &i.predicate,
                &i.origin,
                &i.unparsed,
            )
                .encode(e)
        })?;
        encode_list(&self.views, e, |v, e| {
            (&v.name, &v.columns, &v.select, &v.unparsed).encode(e)
        })?;
        encode_list(&self.triggers, e, |t, e| {
            (
                &t.name,
                &t.table,
                &t.timing,
                &t.event,
                &t.when,
                &t.body,
                &t.unparsed,
            )
                .encode(e)
        })
    }
}

impl Schema {
    /// The hash of what the schema means, insensitive to how its SQL is
    /// written (see the module docs for exactly what counts).
    pub fn semantic_hash(&self) -> SchemaHash {
        // Encoded in place, field by field, rather than from a cleaned-up
        // clone: this runs on every capture (see benches/schema.rs).
        let tables: Vec<Cow<'_, Table>> = self
            .tables
            .values()
            .map(|table| {
                if is_canonical(table) {
                    Cow::Borrowed(table)
                } else {
                    let mut table = table.clone();
                    canonicalise_table(&mut table);
                    Cow::Owned(table)
                }
            })
            .collect();
        let (mut constraint_indexes, indexes): (Vec<&Index>, Vec<&Index>) = self
            .indexes
            .values()
            .partition(|index| index.origin != IndexOrigin::Created);
        // Without their names, which SQLite derives from constraint order.
        constraint_indexes.sort_by_cached_key(|index| {
            (
                fold(&index.table),
                index.origin,
                index.parts.clone(),
                index.unique,
                index.predicate.clone(),
                index.unparsed.clone(),
            )
        });
        let semantic = Semantic {
            tables,
            indexes,
            constraint_indexes,
            views: self.views.values().collect(),
            triggers: self.triggers.values().collect(),
        };
        hash(SEMANTIC_DOMAIN, &codec::encode(&semantic))
    }

    /// The hash of the exact `CREATE` texts, kind by kind in name order.
    pub fn exact_hash(&self) -> SchemaHash {
        let mut texts: Vec<(u8, &str, &str)> = Vec::new();
        for table in self.tables.values() {
            if let Some(sql) = &table.sql {
                texts.push((0, &table.name, sql));
            }
        }
        for index in self.indexes.values() {
            if let Some(sql) = &index.sql {
                texts.push((1, &index.name, sql));
            }
        }
        for view in self.views.values() {
            texts.push((2, &view.name, &view.sql));
        }
        for trigger in self.triggers.values() {
            texts.push((3, &trigger.name, &trigger.sql));
        }
        hash(EXACT_DOMAIN, &codec::encode(&texts))
    }
}

fn hash(domain: &[u8], body: &[u8]) -> SchemaHash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(domain);
    hasher.update(body);
    SchemaHash(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::schema::capture;

    fn schema_of(sql: &str) -> Schema {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        capture::capture(&tx).unwrap().schema
    }

    const BASE: &str = "
        CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT DEFAULT 'anon');
        CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                           title TEXT CHECK (length(title) > 0), score REAL DEFAULT 0);
        CREATE INDEX posts_by_user ON posts(user_id, score DESC) WHERE score > 0;
        CREATE VIEW top_posts AS SELECT id, title FROM posts WHERE score > 10;
        CREATE TRIGGER posts_touch AFTER UPDATE OF title ON posts BEGIN UPDATE posts SET score = score + 1 WHERE id = new.id; END;
    ";

    #[test]
    fn same_schema_written_two_ways_has_equal_semantic_and_different_exact_hashes() {
        let base = schema_of(BASE);
        // Other whitespace, keyword case, quoting, comments; `score` added by
        // ALTER TABLE instead of inline; constraints in another order.
        let other = schema_of(
            "create table \"users\" ( [id] integer primary key , `email` text unique not null ,
                                       name text default ('anon') ) ;
             create table posts (id integer primary key, \"user_id\" integer not null,
                                 title text, -- comment
                                 check ( length ( title ) > 0 ),
                                 foreign key (user_id) references \"users\" (\"id\") on delete cascade);
             alter table posts add column score   REAL   /* zero */ default 0;
             create index posts_by_user on posts (user_id asc, score desc) where (score > 0);
             create view top_posts as select id , title from posts where score>10;
             create trigger posts_touch after update of title on posts for each row
             begin update posts set score=score+1 where id=new.id ; end;",
        );
        assert_eq!(base.semantic_hash(), other.semantic_hash());
        assert_ne!(base.exact_hash(), other.exact_hash());
        assert_eq!(base.exact_hash(), schema_of(BASE).exact_hash());
    }

    #[test]
    fn every_real_change_changes_the_semantic_hash() {
        let base = schema_of(BASE).semantic_hash();
        let changes = [
            // type
            ("score REAL DEFAULT 0", "score INTEGER DEFAULT 0"),
            // nullability
            ("email TEXT NOT NULL UNIQUE", "email TEXT UNIQUE"),
            // default
            ("DEFAULT 'anon'", "DEFAULT 'nobody'"),
            // FK action
            ("ON DELETE CASCADE", "ON DELETE SET NULL"),
            // CHECK
            ("length(title) > 0", "length(title) > 1"),
            // index direction and predicate
            ("score DESC) WHERE", "score) WHERE"),
            ("WHERE score > 0;", "WHERE score >= 0;"),
            // view and trigger
            ("score > 10", "score > 11"),
            ("score + 1", "score + 2"),
            // a column's name case is visible to clients
            ("title TEXT CHECK", "Title TEXT CHECK"),
            // collation
            ("name TEXT DEFAULT", "name TEXT COLLATE NOCASE DEFAULT"),
            // UNIQUE constraint and deferrability
            ("email TEXT NOT NULL UNIQUE", "email TEXT NOT NULL"),
            (
                "ON DELETE CASCADE",
                "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
            ),
        ];
        for (from, to) in changes {
            assert!(BASE.contains(from), "{from}");
            let changed = schema_of(&BASE.replacen(from, to, 1)).semantic_hash();
            assert_ne!(changed, base, "{from} -> {to}");
        }
        let more = [
            "CREATE INDEX users_by_name ON users(name);",
            "CREATE TABLE extra(x);",
            "ALTER TABLE users ADD COLUMN age INTEGER;",
        ];
        for extra in more {
            let changed = schema_of(&format!("{BASE}{extra}")).semantic_hash();
            assert_ne!(changed, base, "{extra}");
        }
    }

    #[test]
    fn sqlite_equivalents_hash_alike() {
        let pairs = [
            // DEFERRABLE alone is immediate in SQLite, like no clause.
            (
                "CREATE TABLE a(x REFERENCES b(y)); CREATE TABLE b(y PRIMARY KEY);",
                "CREATE TABLE a(x REFERENCES b(y) DEFERRABLE INITIALLY IMMEDIATE); CREATE TABLE b(y PRIMARY KEY);",
            ),
            // Explicit defaults.
            (
                "CREATE TABLE a(x TEXT NOT NULL UNIQUE)",
                "CREATE TABLE a(x TEXT COLLATE BINARY NOT NULL ON CONFLICT ABORT UNIQUE ON CONFLICT ABORT)",
            ),
            // Keyword case in types and defaults, operators spelled two ways.
            (
                "CREATE TABLE a(x varchar(10) DEFAULT current_timestamp CHECK (x <> 'a'))",
                "CREATE TABLE a(x VARCHAR ( 10 ) DEFAULT CURRENT_TIMESTAMP CHECK (x != 'a'))",
            ),
            // Constraint order.
            (
                "CREATE TABLE a(x, y, UNIQUE(x), UNIQUE(y), CHECK (x > 0), CHECK (y > 0))",
                "CREATE TABLE a(x, y, CHECK (y > 0), UNIQUE(y), CHECK (x > 0), UNIQUE(x))",
            ),
        ];
        for (one, two) in pairs {
            assert_eq!(
                schema_of(one).semantic_hash(),
                schema_of(two).semantic_hash(),
                "{one} vs {two}"
            );
        }
    }

    #[test]
    fn metadata_tables_do_not_count() {
        let plain = schema_of("CREATE TABLE t(a)");
        let with_meta = schema_of(
            "CREATE TABLE t(a); CREATE TABLE alembic_version(version_num VARCHAR(32) NOT NULL PRIMARY KEY);
             CREATE TABLE t2(id INTEGER PRIMARY KEY AUTOINCREMENT); DROP TABLE t2;",
        );
        assert_eq!(plain.semantic_hash(), with_meta.semantic_hash());
        assert_eq!(plain.exact_hash(), with_meta.exact_hash());
    }

    #[test]
    fn hash_displays_as_hex_and_shortens() {
        let hash = SchemaHash([0xab; 32]);
        assert_eq!(hash.to_string(), "ab".repeat(32));
        assert_eq!(format!("{hash:.6}"), "ababab");
        assert_eq!(
            serde_json::to_value(hash).unwrap(),
            serde_json::json!("ab".repeat(32))
        );
    }

    /// A header's text reads back to the hash it was written from; text that
    /// is not a full-length hash is an error, never a partial hash.
    #[test]
    fn hash_parses_from_its_hex() {
        let hash = SchemaHash([0x5c; 32]);
        assert_eq!(hash.to_string().parse::<SchemaHash>().unwrap(), hash);
        for bad in ["", "5c5c", &"zz".repeat(32), &format!("{hash}0")] {
            assert!(bad.parse::<SchemaHash>().is_err(), "{bad}");
        }
    }
}

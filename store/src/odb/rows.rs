//! Decoding `refs`, `reflog` and `packs.dictionary` values without trusting
//! them: a damaged row becomes a reason, never a panic or a guess.

use rusqlite::types::Value;

use crate::id::ObjectId;
use crate::object::Kind;
use crate::refs::{RefName, ReflogEntry};

/// A ref or reflog row that cannot be read.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokenRef {
    /// The ref's name as stored, made printable.
    pub name: String,
    /// The reflog entry's number, or `None` for a row of `refs`.
    pub seq: Option<i64>,
    /// What is wrong with it.
    pub reason: String,
    /// The row's key, to delete it by.
    pub(super) key: Value,
}

impl std::fmt::Display for BrokenRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            None => write!(f, "ref '{}': {}", self.name, self.reason),
            Some(seq) => write!(f, "reflog entry {seq} of '{}': {}", self.name, self.reason),
        }
    }
}

pub(super) fn describe_value(value: &Value) -> String {
    match value {
        Value::Text(text) => text.escape_debug().to_string(),
        Value::Blob(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("x'{hex}'")
        }
        Value::Integer(n) => n.to_string(),
        Value::Real(x) => x.to_string(),
        Value::Null => "NULL".to_owned(),
    }
}

fn ref_name(name: Value) -> std::result::Result<RefName, String> {
    match name {
        Value::Text(text) => RefName::new(text).map_err(|e| format!("bad name: {}", e.reason)),
        other => Err(format!("its name is a {:?}, not text", other.data_type())),
    }
}

fn ref_id(value: Value, column: &str) -> std::result::Result<Option<ObjectId>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Blob(bytes) => ObjectId::try_from_slice(&bytes)
            .map(Some)
            .ok_or_else(|| format!("its {column} id is {} bytes, not 32", bytes.len())),
        other => Err(format!("its {column} id is a {:?}", other.data_type())),
    }
}

pub(super) fn ref_row(name: Value, id: Value) -> std::result::Result<(RefName, ObjectId), String> {
    let name = ref_name(name)?;
    let id = ref_id(id, "target")?.ok_or("its target id is NULL")?;
    Ok((name, id))
}

pub(super) fn reflog_row(
    name: Value,
    old: Value,
    new: Value,
    time: Value,
    message: Value,
) -> std::result::Result<ReflogEntry, String> {
    let (Value::Integer(time), Value::Text(message)) = (time, message) else {
        return Err("its time or message has the wrong type".to_owned());
    };
    Ok(ReflogEntry {
        name: ref_name(name)?,
        old: ref_id(old, "old")?,
        new: ref_id(new, "new")?,
        time,
        message,
    })
}

/// Reads a pack's `dictionary` column: NULL or the 32-byte hash of a
/// dictionary. Anything else (such as a format 1 row number whose dictionary
/// was gone when the store was upgraded) is refused, never guessed at.
pub(super) fn dictionary_ref(
    value: &rusqlite::types::Value,
) -> std::result::Result<Option<ObjectId>, String> {
    use rusqlite::types::Value;
    match value {
        Value::Null => Ok(None),
        Value::Blob(bytes) => ObjectId::try_from_slice(bytes).map(Some).ok_or_else(|| {
            format!(
                "names a dictionary by {} bytes, not a 32-byte hash",
                bytes.len()
            )
        }),
        Value::Integer(seq) => Err(format!("names dictionary row {seq}, which the store lacks")),
        other => Err(format!("names a dictionary by a {:?}", other.data_type())),
    }
}

/// An object's index row as packing reads it.
pub(crate) struct ObjectRow {
    /// The pack holding its bytes.
    pub(crate) pack: i64,
    /// Its id and kind, `None` when the row's id or kind cannot be read.
    pub(crate) object: Option<(ObjectId, Kind)>,
    /// Where its encoded bytes start in the decompressed pack.
    pub(crate) offset: i64,
    /// How many bytes they are.
    pub(crate) len: i64,
}

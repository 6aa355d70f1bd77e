//! A table that both schemas have, changed with `batch_alter_table`: in
//! place where SQLite's `ALTER TABLE` can, else recreated from
//! `copy_from`, the table as the model holds it.

use std::collections::BTreeSet;

use super::python::{py_args, py_str};
use super::sqlalchemy::{
    fk_options, fk_unwritable, sa_column, sa_index_columns, sa_unique, table_items,
};
use crate::schema::model::{Column, ForeignKey, IndexOrigin, Schema, Table, Unique, fold};
use crate::schema::plan::{can_add, can_drop};

/// The batch operations that turn table `a` of `old` into `b`, or why
/// they cannot. `dropped_indexes` are the indexes dropped before (so not
/// copied by a recreate).
pub(super) fn alter_table(
    old: &Schema,
    a: &Table,
    b: &Table,
    dropped_indexes: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let same = |x: &Table, y: &Table| {
        x.name == y.name
            && x.primary_key == y.primary_key
            && x.checks == y.checks
            && x.options == y.options
            && x.virtual_table == y.virtual_table
            && x.unparsed == y.unparsed
    };
    let dropped = a.columns_not_in(b);
    let added = b.columns_not_in(a);
    // Kept columns unchanged and in order, new ones at the end: what
    // add_column and drop_column make.
    let mut expected = a.columns_shared_with(b);
    expected.extend(&added);
    if !same(a, b) || expected != b.columns.iter().collect::<Vec<_>>() {
        return Err(format!(
            "{} changes beyond added and dropped columns and constraints",
            b.name
        ));
    }
    let constraints = constraint_ops(a, b)?;
    let mut ops = constraints.drops.clone();
    for column in &dropped {
        ops.push(format!("batch_op.drop_column({})", py_str(&column.name)));
    }
    for column in &added {
        ops.push(format!(
            "batch_op.add_column({})",
            sa_column(&b.name, column)?
        ));
    }
    ops.extend(constraints.creates.iter().cloned());
    let in_place = constraints.is_empty()
        && added.iter().all(|c| can_add(c))
        && droppable(old, a, &dropped, dropped_indexes);
    let how = if in_place {
        // SQLite's ALTER TABLE does these in place; Alembic's "auto" mode
        // would copy the table for a dropped column or an expression default.
        "recreate=\"never\"".to_owned()
    } else if constraints.unnamed.is_empty() {
        format!("copy_from={}", copy_from(old, a, dropped_indexes)?)
    } else {
        format!(
            "copy_from={}, table_args=({},), recreate=\"always\"",
            copy_from(old, a, dropped_indexes)?,
            constraints.unnamed.join(", ")
        )
    };
    let mut out = format!(
        "with op.batch_alter_table({}, {how}) as batch_op:",
        py_str(&a.name)
    );
    for op in ops {
        out.push_str("\n    ");
        out.push_str(&op);
    }
    Ok(vec![out])
}

/// Whether SQLite's `ALTER TABLE … DROP COLUMN` can drop `columns` of `a`
/// once `dropped_indexes` (dropped before the table changes) are gone.
fn droppable(
    old: &Schema,
    a: &Table,
    columns: &[&Column],
    dropped_indexes: &BTreeSet<String>,
) -> bool {
    if columns.is_empty() {
        return true;
    }
    let mut remaining = old.clone();
    remaining
        .indexes
        .retain(|key, _| !dropped_indexes.contains(key));
    columns.iter().all(|c| can_drop(&remaining, a, c))
}

/// The batch operations that drop the UNIQUE constraints and foreign keys
/// `a` has and `b` lacks, and create those `b` adds; or why they cannot be
/// written (a constraint without a name cannot be dropped by name).
fn constraint_ops(a: &Table, b: &Table) -> Result<ConstraintOps, String> {
    let lost_uniques: Vec<&Unique> = a
        .uniques
        .iter()
        .filter(|u| !b.uniques.contains(u))
        .collect();
    let new_uniques: Vec<&Unique> = b
        .uniques
        .iter()
        .filter(|u| !a.uniques.contains(u))
        .collect();
    let lost_fks: Vec<&ForeignKey> = a
        .foreign_keys
        .iter()
        .filter(|fk| !b.foreign_keys.contains(fk))
        .collect();
    let new_fks: Vec<&ForeignKey> = b
        .foreign_keys
        .iter()
        .filter(|fk| !a.foreign_keys.contains(fk))
        .collect();
    let mut ops = Vec::new();
    for unique in &lost_uniques {
        let name = unique
            .name
            .as_ref()
            .ok_or_else(|| format!("an unnamed UNIQUE of {} cannot be dropped by name", a.name))?;
        ops.push(format!(
            "batch_op.drop_constraint({}, type_=\"unique\")",
            py_str(name)
        ));
    }
    for fk in &lost_fks {
        let name = fk.name.as_ref().ok_or_else(|| {
            format!(
                "an unnamed foreign key of {} cannot be dropped by name",
                a.name
            )
        })?;
        ops.push(format!(
            "batch_op.drop_constraint({}, type_=\"foreignkey\")",
            py_str(name)
        ));
    }
    let drops = std::mem::take(&mut ops);
    // Batch mode creates only named constraints; an unnamed UNIQUE goes
    // into the recreated table as it is (`table_args`).
    let mut unnamed = Vec::new();
    for unique in &new_uniques {
        let constraint = sa_unique(&b.name, unique)?;
        match &unique.name {
            Some(name) => ops.push(format!(
                "batch_op.create_unique_constraint({}, [{}])",
                py_str(name),
                py_args(&unique.columns)
            )),
            None => unnamed.push(constraint),
        }
    }
    for fk in &new_fks {
        if let Some(reason) = fk_unwritable(&b.name, fk) {
            return Err(reason);
        }
        // An unnamed one could go into `table_args`, but there its target
        // table is unknown to SQLAlchemy.
        let name = fk.name.as_ref().ok_or_else(|| {
            format!(
                "an unnamed foreign key of {} cannot be created in batch mode",
                b.name
            )
        })?;
        let options = fk_options(&ForeignKey {
            name: None,
            ..(*fk).clone()
        });
        ops.push(format!(
            "batch_op.create_foreign_key({}, {}, [{}], [{}]{options})",
            py_str(name),
            py_str(&fk.target_table),
            py_args(&fk.columns),
            py_args(&fk.target_columns)
        ));
    }
    Ok(ConstraintOps {
        drops,
        creates: ops,
        unnamed,
    })
}

/// The batch operations of [`constraint_ops`].
struct ConstraintOps {
    /// `drop_constraint` calls, run before the column changes.
    drops: Vec<String>,
    /// `create_*` calls, run after them.
    creates: Vec<String>,
    /// Unnamed constraints the recreated table gets as they are.
    unnamed: Vec<String>,
}

impl ConstraintOps {
    fn is_empty(&self) -> bool {
        self.drops.is_empty() && self.creates.is_empty() && self.unnamed.is_empty()
    }
}

/// `sa.Table(...)` of table `a` as the model holds it, with the indexes
/// that stay: what a batch recreate copies instead of reflecting.
fn copy_from(
    old: &Schema,
    a: &Table,
    dropped_indexes: &BTreeSet<String>,
) -> Result<String, String> {
    let mut out = format!("sa.Table(\n    {},\n    sa.MetaData(),\n", py_str(&a.name));
    for item in table_items(a)? {
        out.push_str(&format!("    {item},\n"));
    }
    for index in old.indexes_on(&a.name) {
        if index.origin != IndexOrigin::Created || dropped_indexes.contains(&fold(&index.name)) {
            continue;
        }
        let columns = sa_index_columns(index)
            .ok_or_else(|| format!("index {} of {} cannot be copied", index.name, a.name))?;
        let mut item = format!(
            "    sa.Index({}, {}, unique={}",
            py_str(&index.name),
            py_args(&columns),
            if index.unique { "True" } else { "False" }
        );
        if let Some(predicate) = &index.predicate {
            item.push_str(&format!(", sqlite_where=sa.text({})", py_str(predicate)));
        }
        out.push_str(&item);
        out.push_str("),\n");
    }
    out.push(')');
    Ok(out.replace('\n', "\n    "))
}

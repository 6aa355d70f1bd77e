//! A new Alembic revision file: its id, its name (the project's
//! `file_template`), its text (the project's `script.py.mako`, or Alembic's
//! generic one) and writing it. Shared by both ways of adopting.

use std::path::{Path, PathBuf};

use crate::migrations::history::file_name::FileNaming;
use crate::migrations::history::graph::Graph;
use crate::migrations::history::project::Project;
use crate::migrations::history::revision_id::RevisionId;
use crate::schema::alembic::Operations;

use super::AdoptError;

/// A revision file rendered and not yet written.
#[derive(Clone, Debug)]
pub(super) struct Draft {
    /// The new revision's id.
    pub revision: RevisionId,
    /// Where it goes.
    pub path: PathBuf,
    /// Whether the project's `script.py.mako` rendered it.
    pub project_template: bool,
    /// Its text.
    pub source: String,
}

impl Draft {
    /// Renders a revision on `head` with `message` and `operations`, named
    /// for the versions folder `versions`; `seed` tells this request from
    /// others made at the same moment.
    pub fn render(
        project: &Project,
        graph: &Graph,
        head: &RevisionId,
        versions: &Path,
        message: &str,
        operations: &Operations,
        seed: &[u8],
    ) -> Result<Draft, AdoptError> {
        let revision = new_revision_id(graph, message, seed);
        let created = jiff::Zoned::now();
        let naming = FileNaming::of(project.alembic.as_ref())?;
        let fields = TemplateFields {
            revision: &revision,
            down_revision: head,
            message,
            create_date: &created.strftime("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            operations,
        };
        let values = fields.values();
        let rendered = project_template(project).and_then(|text| render(&text, &values).ok());
        let project_template = rendered.is_some();
        let source = match rendered {
            Some(source) => source,
            None => render(GENERIC_TEMPLATE, &values)
                .expect("holds: the generic template uses only known expressions"),
        };
        let path = versions.join(naming.file_name(&revision, message, &created)?);
        Ok(Draft {
            revision,
            path,
            project_template,
            source,
        })
    }

    /// Writes the file, which must not exist yet.
    pub fn write(&self) -> Result<(), AdoptError> {
        use std::io::Write;
        let fail = |source| AdoptError::Write {
            path: self.path.clone(),
            source,
        };
        // A file_template may put revisions in dated subdirectories.
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .map_err(fail)?;
        file.write_all(self.source.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)
    }

    /// Removes the file this run wrote; a file that is already gone is
    /// fine.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A new revision id as Alembic makes them (`uuid4().hex[-12:]`): twelve
/// hex digits, here from BLAKE3 of the time, the process and the request,
/// different from every id in `graph`.
fn new_revision_id(graph: &Graph, message: &str, seed: &[u8]) -> RevisionId {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut attempt = 0u32;
    loop {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&now.to_le_bytes());
        hasher.update(&std::process::id().to_le_bytes());
        hasher.update(seed);
        hasher.update(message.as_bytes());
        hasher.update(&attempt.to_le_bytes());
        let id = RevisionId::from(&hasher.finalize().to_hex()[..12]);
        if graph.get(&id).is_none() {
            return id;
        }
        attempt += 1;
    }
}

/// The project's `script.py.mako`, if it has one that can be read.
fn project_template(project: &Project) -> Option<String> {
    let location = &project.alembic.as_ref()?.script_location;
    std::fs::read_to_string(location.join("script.py.mako")).ok()
}

/// Alembic's generic `script.py.mako` (1.16 and later), used when the
/// project has none or one with Mako beyond plain expressions.
const GENERIC_TEMPLATE: &str = r#""""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
"#;

/// What the template's expressions stand for.
struct TemplateFields<'a> {
    revision: &'a RevisionId,
    down_revision: &'a RevisionId,
    message: &'a str,
    create_date: &'a str,
    operations: &'a Operations,
}

impl TemplateFields<'_> {
    /// Each Mako expression Alembic's templates use (whitespace removed),
    /// with its value.
    fn values(&self) -> Vec<(&'static str, String)> {
        let repr = |id: &RevisionId| format!("'{id}'");
        // The docstring holds the message: a quote or backslash in it must
        // not end or bend the string.
        let message = self.message.replace('\\', "\\\\").replace('"', "\\\"");
        vec![
            ("message", message),
            ("up_revision", self.revision.to_string()),
            ("down_revision|comma,n", self.down_revision.to_string()),
            ("create_date", self.create_date.to_owned()),
            ("importsifimportselse\"\"", String::new()),
            ("repr(up_revision)", repr(self.revision)),
            ("repr(down_revision)", repr(self.down_revision)),
            ("repr(branch_labels)", "None".to_owned()),
            ("repr(depends_on)", "None".to_owned()),
            (
                "upgradesifupgradeselse\"pass\"",
                self.operations.upgrade_body("    "),
            ),
            (
                "downgradesifdowngradeselse\"pass\"",
                self.operations.downgrade_body("    "),
            ),
        ]
    }
}

/// Renders a `script.py.mako` whose only Mako is `${…}` expressions from
/// `values` (compared without whitespace). Control lines (`%`), comments
/// (`##`) and blocks (`<%`) are not rendered: `Err` names the first thing
/// that is not understood.
fn render(template: &str, values: &[(&'static str, String)]) -> Result<String, String> {
    for line in template.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('%') || trimmed.starts_with("##") || trimmed.contains("<%") {
            return Err(format!("Mako line {trimmed:?}"));
        }
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "an unclosed ${".to_owned())?;
        let expression: String = after[..end].split_whitespace().collect();
        let (_, value) = values
            .iter()
            .find(|(name, _)| *name == expression)
            .ok_or_else(|| format!("expression ${{{}}}", &after[..end]))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_for<'a>(
        revision: &'a RevisionId,
        head: &'a RevisionId,
        operations: &'a Operations,
    ) -> Vec<(&'static str, String)> {
        TemplateFields {
            revision,
            down_revision: head,
            message: "adopt \"feature\"",
            create_date: "2026-12-05 13:00:00.000000",
            operations,
        }
        .values()
    }

    #[test]
    fn the_generic_template_renders_like_alembic_revision() {
        let operations = Operations {
            upgrade: vec!["op.create_table(\n    \"t\",\n)".into()],
            downgrade: vec!["op.drop_table(\"t\")".into()],
        };
        let (revision, head) = (RevisionId::from("abcdef012345"), RevisionId::from("1f3a"));
        let text = render(GENERIC_TEMPLATE, &fields_for(&revision, &head, &operations)).unwrap();
        for needle in [
            "\"\"\"adopt \\\"feature\\\"\n\nRevision ID: abcdef012345\nRevises: 1f3a\n",
            "revision: str = 'abcdef012345'\n",
            "down_revision: Union[str, Sequence[str], None] = '1f3a'\n",
            "branch_labels: Union[str, Sequence[str], None] = None\n",
            "    \"\"\"Upgrade schema.\"\"\"\n    op.create_table(\n        \"t\",\n    )\n",
            "    \"\"\"Downgrade schema.\"\"\"\n    op.drop_table(\"t\")\n",
        ] {
            assert!(text.contains(needle), "{needle}\n---\n{text}");
        }
        assert!(!text.contains("${"), "{text}");
    }

    #[test]
    fn templates_with_other_mako_are_not_rendered() {
        let operations = Operations::default();
        let (revision, head) = (RevisionId::from("abcdef012345"), RevisionId::from("1f3a"));
        let values = fields_for(&revision, &head, &operations);
        assert!(render("% if x:\n${message}\n% endif\n", &values).is_err());
        assert!(render("${context.get('x')}", &values).is_err());
        assert_eq!(
            render(
                "${ message }: ${upgrades if upgrades else \"pass\"}",
                &values
            )
            .unwrap(),
            "adopt \\\"feature\\\": pass"
        );
    }
}

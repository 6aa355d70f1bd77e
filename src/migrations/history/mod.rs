//! Migration histories: where a project's migrations live and what each revision file declares, read statically.
pub mod alembic_config;
pub mod data_steps;
pub mod file_name;
pub mod graph;
pub mod position;
pub mod project;
pub mod revision_file;
pub mod revision_id;
pub mod sql_folder;
pub mod targets;
pub mod touched;

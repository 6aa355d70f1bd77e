//! Integration tests: the real `migsnap` binary on real SQLite files.
//!
//! One module per area; `common` holds the fixtures. Run with
//! `cargo test --test it`.

mod common;

mod accept;
mod adopt;
mod alembic_projects;
mod bad_input;
mod bisect;
mod bisect_long;
mod bootstrap;
mod check;
mod checkout_restore;
mod completions;
mod concurrency;
mod corruption;
mod crash;
mod data_diff;
mod delta_restore;
mod demo;
mod faults;
mod fix;
mod fsck_gc_tags;
mod fsync_faults;
mod graph;
mod guard;
mod integrity;
mod lint;
mod log_changed;
mod migrations;
mod models;
mod odd_ids;
mod output_paths;
mod pack;
mod precommit;
mod remote;
mod repair;
mod report;
mod report_shapes;
mod restore_refusals;
mod revisions;
mod roundtrip;
mod roundtrip_data;
mod schema_alembic;
mod schema_meaning;
mod schema_plan;
mod security;
mod snapshot_log;
mod store_init;
mod track;
mod unknown_stamp;
mod upstream;
mod verdicts;
mod wheel;

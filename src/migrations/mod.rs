//! Databases against their migration history: the history read statically,
//! the reference chain built by replaying it, and the workflows on top
//! (drift status and locate, bisect, repair, the verified stamp, adopting
//! extra objects as a revision, guard, lint, the round trip, a snapshot
//! judged for artefacts, and the report that gathers them for a person).

pub mod adopt;
pub mod bisect;
pub mod drift;
pub mod fix;
pub mod guard;
pub mod history;
pub mod lint;
pub mod models;
pub mod record;
pub mod repair;
pub mod replay;
pub mod report;
pub mod roundtrip;
pub mod side;
pub mod stamp;
pub mod workspace;

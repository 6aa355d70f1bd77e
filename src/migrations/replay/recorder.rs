//! The recorder: a thread that records replayed states as references while
//! the next migration runs.
//!
//! Recording a reference (capture, pages, snapshot) takes about as long as a
//! migration step, so it overlaps with the next one: after each step the
//! scratch file is copied aside and the recorder, with its own handle on the
//! store, snapshots the copy. It stops at its first failure; the replay sees
//! that failure the next time it drains the finished steps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread::Scope;

use crossbeam_channel::{Receiver, Sender};
use migsnap_store::ObjectId;

use super::{ReplayError, ReplayEvent, ReplayReport, Replayer, StepReport};
use crate::migrations::history::revision_id::RevisionId;
use crate::repo::Repo;

/// A replayed state waiting for the recorder.
pub(super) struct Job {
    pub(super) targets: Vec<RevisionId>,
    /// The targets of the references that are its parents.
    pub(super) parents: Vec<Vec<RevisionId>>,
    /// A copy of the scratch database right after the step; the recorder
    /// deletes it when done.
    pub(super) file: PathBuf,
    pub(super) seconds: f64,
}

/// The replay's end of a running recorder thread.
pub(super) struct Recorder {
    jobs: Sender<Job>,
    done: Receiver<Result<StepReport, ReplayError>>,
}

impl Recorder {
    /// Starts the recorder in `scope`. It opens its own handle on the store
    /// at `store_dir` (for the project at `root`); `recorded` are the
    /// references that exist already, by targets, which jobs may name as
    /// parents.
    pub(super) fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        replayer: &'env Replayer<'env>,
        store_dir: PathBuf,
        root: PathBuf,
        recorded: BTreeMap<Vec<RevisionId>, ObjectId>,
    ) -> Recorder {
        let (jobs, job_queue) = crossbeam_channel::unbounded::<Job>();
        let (done_send, done) = crossbeam_channel::unbounded();
        scope.spawn(move || {
            let recorder = Repo::open(Some(&store_dir), &root)
                .map_err(|e| ReplayError::Setting(e.to_string()));
            let mut recorder = match recorder {
                Ok(r) => r,
                Err(e) => {
                    let _ = done_send.send(Err(e));
                    return;
                }
            };
            let mut ids = recorded;
            for job in job_queue {
                let parents: Vec<ObjectId> = job
                    .parents
                    .iter()
                    .filter_map(|p| ids.get(p).copied())
                    .collect();
                let result = replayer.record(&mut recorder, &job.file, &job.targets, parents);
                let _ = std::fs::remove_file(&job.file);
                let result = result.map(|id| {
                    ids.insert(job.targets.clone(), id);
                    StepReport {
                        targets: job.targets,
                        snapshot: id,
                        cached: false,
                        seconds: Some(job.seconds),
                    }
                });
                let failed = result.is_err();
                let _ = done_send.send(result);
                if failed {
                    return;
                }
            }
        });
        Recorder { jobs, done }
    }

    /// Queues a state to record.
    pub(super) fn send(&self, job: Job) {
        // A recorder that stopped has sent its failure, which the next
        // drain reports.
        let _ = self.jobs.send(job);
    }

    /// Moves the steps finished so far into `report`.
    pub(super) fn drain(
        &self,
        report: &mut ReplayReport,
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<(), ReplayError> {
        drain(&self.done, report, on_event, false)
    }

    /// Closes the queue and waits for every queued step, moving them into
    /// `report`.
    pub(super) fn finish(
        self,
        report: &mut ReplayReport,
        on_event: &mut dyn FnMut(ReplayEvent<'_>),
    ) -> Result<(), ReplayError> {
        drop(self.jobs);
        drain(&self.done, report, on_event, true)
    }
}

/// Moves the recorder's finished steps into `report`, waiting for all of
/// them when `wait` (the job queue is closed by then).
fn drain(
    done: &Receiver<Result<StepReport, ReplayError>>,
    report: &mut ReplayReport,
    on_event: &mut dyn FnMut(ReplayEvent<'_>),
    wait: bool,
) -> Result<(), ReplayError> {
    loop {
        let next = if wait {
            done.recv().ok()
        } else {
            done.try_recv().ok()
        };
        let Some(result) = next else {
            return Ok(());
        };
        let step = result?;
        on_event(ReplayEvent::Done(&step));
        report.steps.push(step);
    }
}

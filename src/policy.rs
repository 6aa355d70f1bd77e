//! Verdicts: how a command's findings become "clean" or not, and so its exit
//! code.
//!
//! Every judging command (status, history, lint, snapshot, locate, test,
//! guard) reports findings with the default severity its area gives them.
//! This module is the one place that turns them into a verdict: the
//! project's per-code severities and ignore list from the `[findings]` table
//! of `migsnap.toml`, `--strict`, and the `--fail-on` threshold. Keeping it
//! in one place is what makes the same situation give the same exit code in
//! every command.

use serde::Serialize;

pub use crate::config::findings::{FindingsConfig, IgnoreRule, Level, Threshold};
use crate::finding::{Finding, Severity};

/// Codes whose findings are about the form of a schema, not its meaning
/// (column order, constraint names). Info by default; `--strict` makes
/// them errors.
pub const COSMETIC_CODES: &[&str] = &[
    crate::migrations::drift::codes::ORDER,
    crate::migrations::drift::codes::NAME,
];

/// Every finding code any command can report, for validating configuration.
pub fn known_codes() -> Vec<&'static str> {
    [
        crate::schema::finding::codes::ALL,
        crate::migrations::drift::codes::ALL,
        crate::migrations::history::graph::codes::ALL,
        &crate::migrations::lint::codes::ALL[..],
        crate::migrations::roundtrip::codes::ALL,
        crate::migrations::guard::codes::ALL,
        crate::migrations::repair::codes::ALL,
        crate::migrations::fix::codes::ALL,
        crate::migrations::models::codes::ALL,
        crate::snapshots::snapshot::codes::ALL,
    ]
    .concat()
}

impl IgnoreRule {
    /// Whether this rule acknowledges `finding`.
    fn matches(&self, finding: &Finding) -> bool {
        let code = match self.code.strip_suffix('*') {
            Some(prefix) => finding.code.starts_with(prefix),
            None => finding.code == self.code,
        };
        code && self.object.as_ref().is_none_or(|o| *o == finding.object)
            && self
                .revision
                .as_ref()
                .is_none_or(|r| finding.revision.as_deref() == Some(r.as_str()))
    }
}

/// A configuration that names a code no command reports.
#[derive(Debug, thiserror::Error)]
#[error("unknown finding code '{code}' in [findings] {place}")]
pub struct UnknownCode {
    /// The code as written.
    pub code: String,
    /// Where it was written (`severity` or `ignore`).
    pub place: &'static str,
}

/// What the command line asks of a verdict; unset values fall back to the
/// configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask {
    /// `--fail-on`.
    pub fail_on: Option<Threshold>,
    /// `--strict` given.
    pub strict: bool,
}

/// A finding left out of the verdict, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// The finding, with its default severity.
    #[serde(flatten)]
    pub finding: Finding,
    /// Why it was left out: the ignore rule's reason, or the configuration
    /// that turned its code off.
    pub reason: String,
}

/// The judgement of a command's findings.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The findings that count, with their configured severities, in the
    /// order the command found them.
    pub findings: Vec<Finding>,
    /// The findings left out by the ignore list or an `off` severity.
    pub ignored: Vec<Ignored>,
    /// The threshold applied.
    pub fail_on: Threshold,
    /// Whether cosmetic differences counted as errors.
    pub strict: bool,
    /// No finding at or above `fail_on`.
    pub clean: bool,
}

impl FindingsConfig {
    /// Fails on a code no command reports, so a misspelt code does not
    /// silently leave a finding at its default.
    pub fn validate(&self) -> Result<(), UnknownCode> {
        let known = known_codes();
        let unknown = |code: &str| !known.contains(&code);
        if let Some(code) = self.severity.keys().find(|c| unknown(c)) {
            return Err(UnknownCode {
                code: code.clone(),
                place: "severity",
            });
        }
        match self
            .ignore
            .iter()
            .find(|rule| match rule.code.strip_suffix('*') {
                Some(prefix) => !known.iter().any(|k| k.starts_with(prefix)),
                None => unknown(&rule.code),
            }) {
            Some(rule) => Err(UnknownCode {
                code: rule.code.clone(),
                place: "ignore",
            }),
            None => Ok(()),
        }
    }

    /// Judges `findings`: configured severities, `--strict`, the ignore
    /// list, then the threshold.
    pub fn judge(&self, findings: Vec<Finding>, ask: Ask) -> Verdict {
        let strict = ask.strict || self.strict.unwrap_or(false);
        let fail_on = ask.fail_on.or(self.fail_on).unwrap_or(Threshold::Error);
        let mut kept = Vec::new();
        let mut ignored = Vec::new();
        for mut finding in findings {
            if let Some(rule) = self.ignore.iter().find(|rule| rule.matches(&finding)) {
                let reason = rule
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("ignored by [findings] ignore ({})", rule.code));
                ignored.push(Ignored { finding, reason });
                continue;
            }
            match self
                .severity
                .get(finding.code)
                .map(|level| level.severity())
            {
                Some(None) => {
                    ignored.push(Ignored {
                        reason: format!("[findings] severity sets {} off", finding.code),
                        finding,
                    });
                    continue;
                }
                Some(Some(severity)) => finding.severity = severity,
                None => {}
            }
            if strict && COSMETIC_CODES.contains(&finding.code) {
                finding.severity = Severity::Error;
            }
            kept.push(finding);
        }
        let clean = !kept.iter().any(|f| fail_on.reached_by(f.severity));
        Verdict {
            findings: kept,
            ignored,
            fail_on,
            strict,
            clean,
        }
    }
}

impl Verdict {
    /// How many counting findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// One line for people: `clean` or what failed, against the threshold.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = [Severity::Error, Severity::Warning, Severity::Info]
            .into_iter()
            .map(|s| (s, self.count(s)))
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {}{}", s.as_str(), if n == 1 { "" } else { "s" }))
            .collect();
        let found = if counts.is_empty() {
            "no findings".to_owned()
        } else {
            counts.join(", ")
        };
        let ignored = match self.ignored.len() {
            0 => String::new(),
            n => format!(", {n} ignored"),
        };
        let word = if self.clean { "clean" } else { "FAIL" };
        format!(
            "{word}: {found}{ignored} (fail on {}{})",
            self.fail_on.as_str(),
            if self.strict { ", strict" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &'static str, severity: Severity, object: &str) -> Finding {
        Finding::new(code, severity, object, "m")
    }

    #[test]
    fn thresholds_overrides_and_strict_decide_cleanliness() {
        let config: FindingsConfig = toml::from_str(
            "severity = { \"history.header-mismatch\" = \"warning\" }\n\
             [[ignore]]\ncode = \"artefact.*\"\nobject = \"config_old\"\nreason = \"kept on purpose\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        let findings = vec![
            finding("drift.order", Severity::Info, "user"),
            finding("history.header-mismatch", Severity::Info, "a1"),
            finding("artefact.half-rebuilt", Severity::Warning, "config_old"),
        ];
        let verdict = config.judge(findings.clone(), Ask::default());
        assert!(verdict.clean);
        assert_eq!(verdict.findings[1].severity, Severity::Warning);
        assert_eq!(verdict.ignored.len(), 1);
        assert_eq!(verdict.ignored[0].reason, "kept on purpose");
        assert!(
            verdict
                .summary()
                .starts_with("clean: 1 warning, 1 info, 1 ignored")
        );

        let warning = Ask {
            fail_on: Some(Threshold::Warning),
            strict: false,
        };
        assert!(!config.judge(findings.clone(), warning).clean);
        let strict = config.judge(
            findings,
            Ask {
                fail_on: None,
                strict: true,
            },
        );
        assert!(!strict.clean);
        assert_eq!(strict.findings[0].code, "drift.order");
        assert_eq!(strict.findings[0].severity, Severity::Error);
    }

    #[test]
    fn unknown_codes_are_rejected() {
        let typo: FindingsConfig =
            toml::from_str("severity = { \"drift.sheme\" = \"off\" }").unwrap();
        assert_eq!(typo.validate().unwrap_err().code, "drift.sheme");
        let ignore: FindingsConfig = toml::from_str("[[ignore]]\ncode = \"nothing.*\"\n").unwrap();
        assert_eq!(ignore.validate().unwrap_err().place, "ignore");
    }

    #[test]
    fn off_moves_findings_to_ignored() {
        let config: FindingsConfig =
            toml::from_str("severity = { \"status.behind\" = \"off\" }").unwrap();
        let verdict = config.judge(
            vec![finding("status.behind", Severity::Warning, "db")],
            Ask {
                fail_on: Some(Threshold::Info),
                strict: false,
            },
        );
        assert!(verdict.clean);
        assert_eq!(verdict.ignored.len(), 1);
    }

    /// The shipped guide profile is a valid `[findings]` table naming only
    /// real codes, and it holds the guide's two rules as errors.
    #[test]
    fn the_guide_profile_is_valid_and_states_the_guide() {
        #[derive(serde::Deserialize)]
        struct Profile {
            findings: FindingsConfig,
        }
        let profile: Profile = toml::from_str(include_str!("../docs/guide-profile.toml")).unwrap();
        profile.findings.validate().unwrap();
        for code in crate::migrations::lint::codes::ALL {
            assert!(profile.findings.severity.contains_key(code), "{code}");
        }
        for code in ["lint.alters-existing-table", "lint.cross-feature-fk"] {
            assert_eq!(profile.findings.severity[code], Level::Error, "{code}");
        }
    }

    /// Every code a command can report has a row, with its default, in the
    /// findings table of `docs/cli.md`.
    #[test]
    fn every_code_is_documented() {
        let docs = include_str!("../docs/cli.md");
        for code in known_codes() {
            assert!(docs.contains(&format!("| `{code}` |")), "{code}");
        }
    }
}

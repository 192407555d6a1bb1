//! Keeping the configured output files current: rendering after a commit, the cheap
//! check that re-renders a wiped or changed output, and replacing the outputs on reload.

use super::error::VaultError;
use super::handle::{Inner, Vault};
use super::output::{self, OutputSpec};
use super::record::Record;
use super::scan;
use std::collections::HashMap;
use std::path::PathBuf;

impl Vault {
    /// Cheap check of the output files: re-renders those missing, wiped or changed.
    /// Returns the paths re-rendered.
    pub fn check_outputs(&self) -> Result<Vec<PathBuf>, VaultError> {
        let inner = self.lock();
        let _flock = inner.flock()?;
        let (rendered, failures) = inner.render_outputs(None);
        if failures.is_empty() {
            Ok(rendered)
        } else {
            Err(VaultError::Outputs {
                failures,
                rerendered: rendered,
            })
        }
    }

    /// The configured outputs.
    pub fn outputs(&self) -> Vec<OutputSpec> {
        self.lock().outputs.clone()
    }

    /// Replaces the configured outputs (a config reload) and renders any that are not
    /// current. Refused, with nothing changed, when one names an invalid credential.
    pub fn set_outputs(&self, outputs: Vec<OutputSpec>) -> Result<Vec<PathBuf>, VaultError> {
        OutputSpec::check_all(&outputs)?;
        self.lock().outputs = outputs;
        self.check_outputs()
    }
}

impl Inner {
    /// Renders outputs: with `Some(record)` only that credential's, from that record
    /// (just committed); with `None` every output, from each credential's newest
    /// generation, writing only those that are not current.
    pub(super) fn render_outputs(
        &self,
        just_committed: Option<&Record>,
    ) -> (Vec<PathBuf>, Vec<String>) {
        let mut rendered = Vec::new();
        let mut failures = Vec::new();
        let mut cache: HashMap<String, Option<Record>> = HashMap::new();
        let usable = self.usable();
        for spec in &self.outputs {
            let record = match just_committed {
                Some(r) if r.name != spec.credential => continue,
                Some(r) => r.clone(),
                None => {
                    let entry =
                        cache
                            .entry(spec.credential.clone())
                            .or_insert_with(|| match scan::newest(&usable, &spec.credential) {
                                Ok(found) => found.map(|f| f.record),
                                Err(e) => {
                                    failures.push(format!(
                                        "output {} not rendered: {e}",
                                        spec.path.display()
                                    ));
                                    None
                                }
                            });
                    match entry {
                        Some(r) => r.clone(),
                        // Not adopted yet: nothing to render.
                        None => continue,
                    }
                }
            };
            let result = output::render(spec, &record).and_then(|bytes| {
                if just_committed.is_none() && output::is_current(spec, &bytes)? {
                    return Ok(false);
                }
                output::write(spec, &bytes).map(|()| true)
            });
            match result {
                Ok(true) => rendered.push(spec.path.clone()),
                Ok(false) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        (rendered, failures)
    }
}

//! Surfaces: which paths of the recipe a specialist may change, and the check that rejects an edit
//! outside them (or inside the protected evaluator files) before any compute is spent.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

/// A set of recipe-relative paths given by globs: `*` stays within one directory, `**` crosses
/// directories, and a plain directory name covers everything under it.
#[derive(Debug, Clone)]
pub struct PathSet {
    globs: Vec<String>,
    set: GlobSet,
}

impl PathSet {
    /// Builds the set; on a bad glob, returns its index and why.
    pub fn new<S: AsRef<str>>(globs: &[S]) -> Result<PathSet, (usize, String)> {
        let mut builder = GlobSetBuilder::new();
        for (i, g) in globs.iter().enumerate() {
            let g = g.as_ref().trim_start_matches("./").trim_end_matches('/');
            if g.is_empty() || g.starts_with('/') || g.split('/').any(|part| part == "..") {
                return Err((i, format!("`{g}` must be a path relative to the recipe, inside it")));
            }
            for pattern in [g.to_string(), format!("{g}/**")] {
                let glob = GlobBuilder::new(&pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| (i, format!("`{g}` is not a valid glob: {}", e.kind())))?;
                builder.add(glob);
            }
        }
        let set = builder.build().map_err(|e| (0, e.to_string()))?;
        Ok(PathSet { globs: globs.iter().map(|g| g.as_ref().to_string()).collect(), set })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    pub fn globs(&self) -> &[String] {
        &self.globs
    }
}

/// Why an edit may not be made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum EditViolation {
    #[error("`{0}` is protected (evaluator files and data may never change)")]
    Protected(String),
    #[error("`{path}` is outside the surface of specialist `{specialist}`")]
    OutsideSurface { path: String, specialist: String },
}

/// Checks every changed path against the protected set first, then the specialist's surface.
pub fn check_edit(
    changed: &[String],
    surface: &PathSet,
    protected: &PathSet,
    specialist: &str,
) -> Result<(), EditViolation> {
    if let Some(p) = changed.iter().find(|p| protected.matches(p)) {
        return Err(EditViolation::Protected(p.clone()));
    }
    if let Some(p) = changed.iter().find(|p| !surface.matches(p)) {
        return Err(EditViolation::OutsideSurface { path: p.clone(), specialist: specialist.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(globs: &[&str]) -> PathSet {
        PathSet::new(globs).unwrap()
    }

    #[test]
    fn globs_follow_directory_rules() {
        let s = set(&["*.py", "benchmark", "data/**/*.jsonl"]);
        assert!(s.matches("train.py"));
        assert!(!s.matches("lib/train.py"), "`*` must not cross directories");
        assert!(s.matches("benchmark/test.jsonl"));
        assert!(s.matches("benchmark/deep/x"));
        assert!(s.matches("data/a/b/c.jsonl"));
        assert!(!s.matches("data/a/b/c.json"));
    }

    #[test]
    fn rejects_paths_outside_the_recipe() {
        assert!(PathSet::new(&["../secret"]).is_err());
        assert!(PathSet::new(&["/etc/passwd"]).is_err());
        assert_eq!(PathSet::new(&["ok", "[bad"]).unwrap_err().0, 1);
    }

    #[test]
    fn protected_wins_over_surface() {
        let surface = set(&["**"]);
        let protected = set(&["eval.py"]);
        let changed = vec!["train.py".to_string(), "eval.py".to_string()];
        assert_eq!(check_edit(&changed, &surface, &protected, "opt"), Err(EditViolation::Protected("eval.py".into())));
        let narrow = set(&["recipe.toml"]);
        assert!(matches!(
            check_edit(&["train.py".to_string()], &narrow, &protected, "opt"),
            Err(EditViolation::OutsideSurface { .. })
        ));
        assert_eq!(check_edit(&["recipe.toml".to_string()], &narrow, &protected, "opt"), Ok(()));
    }
}

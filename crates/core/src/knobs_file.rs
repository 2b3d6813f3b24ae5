//! Reading and writing a recipe's knob file (TOML), keeping its comments and layout.

use crate::{KnobSpec, KnobValue, KnobValues};
use std::collections::BTreeMap;

/// The values of `names` (dotted paths) in a knob file's text; absent or non-scalar keys are left out.
pub fn read_knobs<'a>(text: &str, names: impl IntoIterator<Item = &'a String>) -> KnobValues {
    let Ok(table) = text.parse::<toml::Table>() else { return KnobValues::new() };
    names
        .into_iter()
        .filter_map(|name| {
            let mut item = toml::Value::Table(table.clone());
            for part in name.split('.') {
                item = item.as_table()?.get(part)?.clone();
            }
            let v = match item {
                toml::Value::Boolean(b) => KnobValue::Bool(b),
                toml::Value::Integer(i) => KnobValue::Int(i),
                toml::Value::Float(f) => KnobValue::Float(f),
                toml::Value::String(s) => KnobValue::Text(s),
                _ => return None,
            };
            Some((name.clone(), v))
        })
        .collect()
}

/// Checks proposed values against the specialist's knobs.
pub fn check_values(values: &KnobValues, specs: &BTreeMap<String, KnobSpec>) -> Result<(), String> {
    if values.is_empty() {
        return Err("the proposal sets no knob".into());
    }
    for (name, value) in values {
        let spec = specs.get(name).ok_or_else(|| {
            format!(
                "`{name}` is not a knob of this specialist (its knobs: {})",
                specs.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        if !spec.admits(value) {
            return Err(format!("{name} = {value} is outside its range {spec:?}"));
        }
    }
    Ok(())
}

/// Writes `values` into the knob file's text, creating tables for dotted names and keeping the
/// comments around each replaced value.
pub fn write_knobs(text: &str, values: &KnobValues) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("the knob file is not valid TOML: {e}"))?;
    for (name, value) in values {
        let parts: Vec<&str> = name.split('.').collect();
        let (leaf, tables) = parts.split_last().expect("knob names are non-empty");
        let mut table = doc.as_table_mut();
        for part in tables {
            let entry = table.entry(part).or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| format!("`{part}` in the knob file is not a table"))?;
        }
        let mut new = match value {
            KnobValue::Bool(b) => toml_edit::Value::from(*b),
            KnobValue::Int(i) => toml_edit::Value::from(*i),
            KnobValue::Float(f) => toml_edit::Value::from(*f),
            KnobValue::Text(s) => toml_edit::Value::from(s.as_str()),
        };
        if let Some(old) = table.get(leaf).and_then(|i| i.as_value()) {
            *new.decor_mut() = old.decor().clone();
        }
        table.insert(leaf, toml_edit::Item::Value(new));
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_keeps_comments_and_creates_tables() {
        let text = "# knobs\nlr = 0.1 # learning rate\nsteps = 10\n\n[data]\nmix = \"a\"\n";
        let values = KnobValues::from([
            ("lr".to_string(), KnobValue::Float(0.003)),
            ("data.mix".to_string(), KnobValue::Text("b".into())),
            ("rl.group".to_string(), KnobValue::Int(4)),
        ]);
        let out = write_knobs(text, &values).unwrap();
        assert!(out.contains("lr = 0.003 # learning rate"), "{out}");
        assert!(out.contains("steps = 10"));
        assert!(out.contains("mix = \"b\""));
        let names: Vec<String> = values.keys().cloned().collect();
        assert_eq!(read_knobs(&out, &names), values);
        assert!(write_knobs("lr = [", &values).is_err());
    }

    #[test]
    fn values_are_checked_against_their_knobs() {
        let specs = BTreeMap::from([("lr".to_string(), KnobSpec::Float([0.0, 1.0]))]);
        assert!(check_values(&KnobValues::from([("lr".to_string(), KnobValue::Float(0.5))]), &specs).is_ok());
        assert!(
            check_values(&KnobValues::from([("lr".to_string(), KnobValue::Float(2.0))]), &specs)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            check_values(&KnobValues::from([("wd".to_string(), KnobValue::Float(0.5))]), &specs)
                .unwrap_err()
                .contains("not a knob")
        );
        assert!(check_values(&KnobValues::new(), &specs).is_err());
    }
}

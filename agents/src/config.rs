//! Agent and runner configs from TOML tables: defaults, unknown keys with a suggestion, and
//! values of the wrong type named by key.

use crate::error::{AgentError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A config struct: serde with documented defaults and a range check.
pub trait Config: Serialize + DeserializeOwned + Default {
    /// Checks ranges; the error names the key.
    fn validate(&self) -> Result<()>;
}

/// The defaults of `T` as a TOML table (the keys a user may set).
pub fn defaults<T: Config>() -> toml::Table {
    match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    }
}

/// The known key closest to `key`, if any is close enough to be a likely typo.
pub fn closest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k.to_string())
}

/// Builds `T` from its defaults overlaid with `table`; unknown keys and bad values are
/// errors naming the key.
pub fn parse<T: Config>(table: &toml::Table) -> Result<T> {
    let mut merged = defaults::<T>();
    let mut given = toml::Table::new();
    for (key, value) in table {
        if !merged.contains_key(key) {
            let known: Vec<&str> = merged.keys().map(String::as_str).collect();
            return Err(AgentError::UnknownKey {
                key: key.clone(),
                suggestion: closest(key, known.iter().copied()),
                known: known.join(", "),
            });
        }
        let expected = merged[key].type_str();
        let value = match (merged[key].is_float(), value) {
            // An integer where a float is expected is fine (`lr = 1`).
            (true, toml::Value::Integer(i)) => toml::Value::Float(*i as f64),
            _ => value.clone(),
        };
        if value.type_str() != expected {
            return Err(AgentError::bad_value(
                key,
                format!("expected a {expected}, got the {} {value}", value.type_str()),
            ));
        }
        merged.insert(key.clone(), value.clone());
        given.insert(key.clone(), value);
    }
    let config: T = match toml::Value::Table(merged.clone()).try_into() {
        Ok(config) => config,
        Err(e) => return Err(blame::<T>(&given, e)),
    };
    config.validate()?;
    Ok(config)
}

/// The error of a config that did not deserialize, naming the key at fault: the first key
/// of `table` that fails on its own over the defaults.
fn blame<T: Config>(table: &toml::Table, error: toml::de::Error) -> AgentError {
    for (key, value) in table {
        let mut single = defaults::<T>();
        single.insert(key.clone(), value.clone());
        if let Err(e) = toml::Value::Table(single).try_into::<T>() {
            return AgentError::bad_value(key, e.message().to_string());
        }
    }
    AgentError::bad_value("config", error.message().to_string())
}

/// Parses `key=value` as a one-entry TOML table; a value that is not TOML is a string
/// (`--set exploration=random`).
pub fn parse_assignment(assignment: &str) -> Result<(String, toml::Value)> {
    let Some((key, value)) = assignment.split_once('=') else {
        return Err(AgentError::bad_value(assignment, "expected key=value"));
    };
    let key = key.trim().to_string();
    let value = value.trim();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key, parsed))
}

/// Checks `lo <= value <= hi`.
pub fn check_range(key: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(AgentError::bad_value(key, format!("{value} is outside [{lo}, {hi}]")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        learning_rate: f64,
        episodes: u64,
        policy: String,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo { learning_rate: 0.1, episodes: 10, policy: "greedy".into() }
        }
    }

    impl Config for Demo {
        fn validate(&self) -> Result<()> {
            check_range("learning_rate", self.learning_rate, 0.0, 1.0)
        }
    }

    #[test]
    fn defaults_overrides_typos_and_types() {
        let mut t = toml::Table::new();
        let (k, v) = parse_assignment("learning_rate=1").unwrap();
        t.insert(k, v);
        let (k, v) = parse_assignment("policy = random").unwrap();
        t.insert(k, v);
        let d: Demo = parse(&t).unwrap();
        assert_eq!(d, Demo { learning_rate: 1.0, episodes: 10, policy: "random".into() });

        t.insert("learnig_rate".into(), toml::Value::Float(0.5));
        let err = parse::<Demo>(&t).unwrap_err().to_string();
        assert!(err.contains("did you mean `learning_rate`"), "{err}");
        t.remove("learnig_rate");

        t.insert("episodes".into(), toml::Value::String("many".into()));
        let err = parse::<Demo>(&t).unwrap_err().to_string();
        assert!(err.contains("`episodes`") && err.contains("expected a integer"), "{err}");
        t.insert("episodes".into(), toml::Value::Integer(3));
        t.insert("learning_rate".into(), toml::Value::Float(2.0));
        assert!(parse::<Demo>(&t).unwrap_err().to_string().contains("learning_rate"));
        assert!(closest("zzzz", ["learning_rate"]).is_none());
    }
}

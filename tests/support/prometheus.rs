//! A reader of the Prometheus text exposition format, enough to find samples by name and
//! labels in what the controller's /metrics serves. Tested in tests/harness/prometheus.rs.

use std::collections::BTreeMap;

/// One sample line of the text exposition format.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn parse_samples(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let mut end = inner.len();
            loop {
                // label name
                let start = match chars.peek() {
                    Some((_, '}')) => {
                        end = chars.next().map_or(end, |(i, _)| i);
                        break;
                    }
                    Some((i, _)) => *i,
                    None => panic!("unterminated labels in {line:?}"),
                };
                let mut eq = start;
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        eq = i;
                        break;
                    }
                }
                let key = inner[start..eq].to_owned();
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "in {line:?}");
                let mut value = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => {}
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
                if let Some((_, ',')) = chars.peek() {
                    chars.next();
                }
            }
            rest = &inner[end + 1..];
        }
        let value_text = rest.split_whitespace().next().unwrap_or_default();
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("bad sample value in {line:?}: {e}")),
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The value of the sample named `name` whose labels include `labels`, when exactly one has them.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches several samples: {matching:?}"
    );
    matching.first().map(|s| s.value)
}

/// Sum of every sample named `name` (0 when there is none).
pub fn sum(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

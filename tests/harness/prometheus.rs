//! tests/support/prometheus.rs: the exposition-format reader the metrics tests rely on.

use crate::support::prometheus::{parse_samples, sample, sum};

const TEXT: &str = r#"# HELP scaleset_watch_instances Instances by state.
# TYPE scaleset_watch_instances gauge
scaleset_watch_instances{namespace="ns",name="a",state="healthy"} 3
scaleset_watch_instances{namespace="ns",name="b",state="healthy"} 4.5
scaleset_watch_instances{namespace="ns",name="a",state="unhealthy"} 0
# TYPE scaleset_watch_up gauge
scaleset_watch_up 1
scaleset_watch_quoted{message="say \"hi\"\nback\\slash, and = and }"} 2
scaleset_watch_duration_bucket{le="+Inf"} 7
scaleset_watch_lowest{le="-Inf"} -Inf
scaleset_watch_top +Inf

"#;

#[test]
fn reads_names_labels_and_values_and_skips_comments() {
    let samples = parse_samples(TEXT);
    assert_eq!(samples.len(), 8);
    let first = &samples[0];
    assert_eq!(first.name, "scaleset_watch_instances");
    assert_eq!(first.labels.len(), 3);
    assert_eq!(first.labels["state"], "healthy");
    assert_eq!(first.value, 3.0);
    assert_eq!(samples[1].value, 4.5);
    let up = &samples[3];
    assert_eq!(up.name, "scaleset_watch_up");
    assert!(up.labels.is_empty());
}

#[test]
fn unescapes_label_values_and_reads_infinities() {
    let samples = parse_samples(TEXT);
    let quoted = samples
        .iter()
        .find(|s| s.name == "scaleset_watch_quoted")
        .expect("the quoted sample");
    assert_eq!(
        quoted.labels["message"],
        "say \"hi\"\nback\\slash, and = and }"
    );
    assert_eq!(quoted.value, 2.0);
    assert_eq!(
        sample(
            &samples,
            "scaleset_watch_duration_bucket",
            &[("le", "+Inf")]
        ),
        Some(7.0)
    );
    assert_eq!(
        sample(&samples, "scaleset_watch_lowest", &[]),
        Some(f64::NEG_INFINITY)
    );
    assert_eq!(
        sample(&samples, "scaleset_watch_top", &[]),
        Some(f64::INFINITY)
    );
}

#[test]
fn finds_a_sample_by_some_of_its_labels_and_sums_a_family() {
    let samples = parse_samples(TEXT);
    let find = |labels: &[(&str, &str)]| sample(&samples, "scaleset_watch_instances", labels);
    assert_eq!(find(&[("name", "b")]), Some(4.5));
    assert_eq!(find(&[("name", "a"), ("state", "unhealthy")]), Some(0.0));
    assert_eq!(find(&[("name", "c")]), None);
    assert_eq!(sample(&samples, "scaleset_watch_absent", &[]), None);
    assert_eq!(sum(&samples, "scaleset_watch_instances"), 7.5);
    assert_eq!(sum(&samples, "scaleset_watch_absent"), 0.0);
}

#[test]
#[should_panic(expected = "matches several samples")]
fn a_lookup_that_matches_several_samples_fails() {
    let samples = parse_samples(TEXT);
    sample(
        &samples,
        "scaleset_watch_instances",
        &[("state", "healthy")],
    );
}

#[test]
#[should_panic(expected = "bad sample value")]
fn a_value_that_is_no_number_fails() {
    parse_samples("scaleset_watch_up one\n");
}

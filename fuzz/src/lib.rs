//! What the fuzz targets in `fuzz_targets/` share.

use serde::Serialize;

/// Whether `a` and `b` serialize to the same JSON, floats to the last bit.
///
/// Everything the gateway stores as JSON (states, events, `result.json`) is written and read
/// back, and must come back as it was. Floats did not always: without serde_json's
/// `float_roundtrip` feature one centroid value in six came back one bit off. The workspace
/// turns that feature on; this comparison keeps it honest.
pub fn same_json(a: &impl Serialize, b: &impl Serialize) -> bool {
    let a = serde_json::to_value(a).expect("serializes");
    let b = serde_json::to_value(b).expect("serializes");
    a == b
}

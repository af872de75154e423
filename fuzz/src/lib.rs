//! What the fuzz targets in `fuzz_targets/` share.

use serde::Serialize;
use serde_json::Value;

/// Whether `a` and `b` serialize to the same JSON, floats up to one unit in the last place.
///
/// serde_json reads floats without its `float_roundtrip` feature (the workspace does not turn it
/// on), and then a float written and read back can come back one bit off: one centroid value in
/// six does, once (the value it becomes reads back as itself). Everything the gateway stores as
/// JSON (states, events, `result.json`) goes through that, so this is the equality it keeps.
pub fn same_json(a: &impl Serialize, b: &impl Serialize) -> bool {
    let a = serde_json::to_value(a).expect("serializes");
    let b = serde_json::to_value(b).expect("serializes");
    same_value(&a, &b)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x.signum() == y.signum() && x.to_bits().abs_diff(y.to_bits()) <= 1)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_value(vx, vy))
        }
        _ => a == b,
    }
}

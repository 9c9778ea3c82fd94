//! The small messages the tests' closure-built services exchange.

/// One integer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Num {
    #[prost(int64, tag = "1")]
    pub n: i64,
}

/// One string.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Text {
    #[prost(string, tag = "1")]
    pub s: String,
}

pub fn num(n: i64) -> Num {
    Num { n }
}

pub fn text(s: &str) -> Text {
    Text { s: s.to_string() }
}

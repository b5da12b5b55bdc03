//! Text a peer controls never reaches a terminal or a log raw: `Display` of any decoded value
//! and the text of every error escape control characters (C0, C1, DEL), bidi controls, line
//! separators and whatever else Python's `repr()` escapes, wherever the text sits (a global's
//! module and name, an object's class, keyword and state names, values, serde's messages that
//! quote a field or variant name).

use std::collections::BTreeMap;

use conn_pickle::{escape_text, from_slice, is_printable_text, value_from_slice};
use proptest::prelude::*;
use serde::Deserialize;

fn unicode(s: &str) -> Vec<u8> {
    let mut p = vec![0x8c];
    p.push(u8::try_from(s.len()).unwrap());
    p.extend(s.as_bytes());
    p
}

/// `module.name(**{key: value})` as NEWOBJ_EX with the state `{key: value}` too, the class
/// from STACK_GLOBAL.
fn object(module: &str, name: &str, key: &str) -> Vec<u8> {
    let mut p = vec![0x80, 4];
    p.extend(unicode(module));
    p.extend(unicode(name));
    p.push(0x93); // STACK_GLOBAL
    p.push(b')'); // args ()
    p.push(b'}');
    p.extend(unicode(key));
    p.push(b'N');
    p.push(b's'); // kwargs {key: None}
    p.push(0x92); // NEWOBJ_EX
    p.push(b'}');
    p.extend(unicode(key));
    p.extend(unicode(key));
    p.push(b's');
    p.push(b'b'); // BUILD {key: key}
    p.push(b'.');
    p
}

/// A list holding the class itself and an instance of it.
fn class_and_instance(module: &str, name: &str, key: &str) -> Vec<u8> {
    let inner = object(module, name, key);
    let mut p = vec![0x80, 4, b']', b'('];
    p.extend(unicode(module));
    p.extend(unicode(name));
    p.push(0x93);
    p.extend(&inner[2..inner.len() - 1]);
    p.extend(b"e.");
    p
}

const HOSTILE: &[&str] = &[
    "\u{1b}[31mred\u{1b}[0m",
    "line\nINFO forged log line",
    "\r\u{7f}\u{85}\u{9b}2J",
    "abc\u{202e}txt.exe",
    "\u{2066}iso\u{2069}\u{2028}\u{2029}",
    "\u{61c}\u{200f}\u{feff}\u{e0041}",
    "back\\slash",
];

#[test]
fn names_from_a_rogue_peer_are_escaped_in_display() {
    for text in HOSTILE {
        let pickle = class_and_instance(text, text, text);
        let value = value_from_slice(&pickle).unwrap();
        let shown = value.to_string();
        assert!(is_printable_text(&shown), "{shown:?}");
        assert!(shown.contains(&*escape_text(text)), "{shown:?}");
    }
    // A plain name is shown as it is.
    let value = value_from_slice(&object("app.models", "Point", "x")).unwrap();
    assert_eq!(value.to_string(), "Point(x=None, x='x')");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "fields are read only through Debug")]
struct Strict {
    a: i64,
}

#[derive(Debug, Deserialize)]
enum Kind {
    One,
    Two,
}

#[test]
fn serde_messages_quoting_the_peer_are_escaped() {
    for text in HOSTILE {
        // A dict with an unknown field named by the peer.
        let mut p = vec![0x80, 4, b'}', b'('];
        p.extend(unicode(text));
        p.push(b'K');
        p.push(1);
        p.extend(b"u.");
        let e = from_slice::<Strict>(&p).unwrap_err().to_string();
        assert!(is_printable_text(&e), "{e:?}");
        // A unit variant named by the peer.
        let mut p = vec![0x80, 4];
        p.extend(unicode(text));
        p.push(b'.');
        let e = from_slice::<Kind>(&p).unwrap_err().to_string();
        assert!(is_printable_text(&e), "{e:?}");
        // A typed decode of an object whose class the peer named.
        let e = from_slice::<BTreeMap<String, i64>>(&object(text, text, text))
            .unwrap_err()
            .to_string();
        assert!(is_printable_text(&e), "{e:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text in any of those places: what is shown is printable.
    #[test]
    fn display_and_errors_are_always_printable(
        module in "\\PC{0,3}[\\x00-\\x1f\\x7f-\\u{a0}\\u{2028}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}]{0,3}",
        name in any::<String>().prop_map(|s| s.chars().take(20).collect::<String>()),
        key in any::<String>().prop_map(|s| s.chars().take(20).collect::<String>()),
    ) {
        let pickle = class_and_instance(&module, &name, &key);
        if let Ok(value) = value_from_slice(&pickle) {
            let shown = value.to_string();
            prop_assert!(is_printable_text(&shown), "{:?}", shown);
        }
        for result in [
            from_slice::<Strict>(&pickle).map(drop),
            from_slice::<Kind>(&pickle).map(drop),
            from_slice::<Vec<BTreeMap<String, i64>>>(&pickle).map(drop),
        ] {
            if let Err(e) = result {
                let text = e.to_string();
                prop_assert!(is_printable_text(&text), "{:?}", text);
            }
        }
    }
}

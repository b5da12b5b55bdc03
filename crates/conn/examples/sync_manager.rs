//! Drives a Python `multiprocessing.managers.SyncManager` from Rust: creates a shared dict and
//! a queue in the manager process, calls their methods, and reads an `#ERROR` reply's
//! exception. The manager speaks `multiprocessing.connection` with pickled
//! `(ident, method, args, kwargs)` requests and `(kind, result)` replies; conn speaks both.
//!
//! Start a manager in Python:
//!
//! ```python
//! from multiprocessing.managers import SyncManager
//! m = SyncManager(address=('127.0.0.1', 50000), authkey=b'abc'); m.start(); input()
//! ```
//!
//! then `cargo run -p conn --example sync_manager 127.0.0.1:50000 abc`.

use conn::pickle::{Date, DateTime, Time, Value};
use conn::{Client, Connection, PyValue};

/// A request to the manager: `(ident, method, args, kwargs)`; the reply's kind and payload.
fn call(
    conn: &mut Connection,
    ident: &PyValue,
    method: &str,
    args: Vec<PyValue>,
) -> conn::Result<(String, PyValue)> {
    let request = Value::tuple(vec![
        ident.clone(),
        Value::str(method),
        Value::tuple(args),
        Value::dict(vec![]),
    ]);
    conn.send_value(&request)?;
    let reply = conn.recv_value()?;
    let kind = reply
        .as_items()
        .and_then(|r| r.first())
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let result = reply
        .as_items()
        .and_then(|r| r.get(1))
        .cloned()
        .unwrap_or(Value::None);
    Ok((kind, result))
}

/// What a `#RETURN` carries, or an error naming the reply.
fn returned(reply: (String, PyValue)) -> conn::Result<PyValue> {
    match reply {
        (kind, value) if kind == "#RETURN" => Ok(value),
        (kind, value) => Err(conn::Error::Io(std::io::Error::other(format!(
            "{kind}: {value}"
        )))),
    }
}

/// Creates a `typeid` object in the manager and opens a connection serving it, as a proxy does.
fn create(address: &str, authkey: &str, typeid: &str) -> conn::Result<(PyValue, Connection)> {
    let mut c = Client::builder(address).authkey(authkey).connect()?;
    let created = returned(call(
        &mut c,
        &Value::None,
        "create",
        vec![Value::str(typeid)],
    )?)?;
    let ident = created
        .as_items()
        .and_then(|t| t.first())
        .cloned()
        .unwrap_or(Value::None);
    let mut proxy = Client::builder(address).authkey(authkey).connect()?;
    returned(call(
        &mut proxy,
        &Value::None,
        "accept_connection",
        vec![Value::str("rust")],
    )?)?;
    println!("created {typeid} {ident}");
    Ok((ident, proxy))
}

fn decref(address: &str, authkey: &str, ident: &PyValue) -> conn::Result<()> {
    let mut c = Client::builder(address).authkey(authkey).connect()?;
    returned(call(&mut c, &Value::None, "decref", vec![ident.clone()])?)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:50000".into());
    let authkey = args.next().unwrap_or_else(|| "abc".into());

    let (dict, mut d) = create(&address, &authkey, "dict")?;
    let when = Value::DateTime(
        DateTime::new(
            Date::new(2026, 11, 23).ok_or("bad date")?,
            Time::new(9, 30, 0, 0).ok_or("bad time")?,
        )
        .into(),
    );
    returned(call(
        &mut d,
        &dict,
        "__setitem__",
        vec![Value::str("when"), when],
    )?)?;
    returned(call(
        &mut d,
        &dict,
        "__setitem__",
        vec![
            Value::str("sizes"),
            Value::list(vec![Value::Int(1), Value::Int(2)]),
        ],
    )?)?;
    println!(
        "dict['when'] = {}",
        returned(call(
            &mut d,
            &dict,
            "__getitem__",
            vec![Value::str("when")]
        )?)?
    );
    println!(
        "len(dict) = {}",
        returned(call(&mut d, &dict, "__len__", vec![])?)?
    );
    // A dict view comes back as a `builtins.list` call (the manager's reducer for views):
    // a list here, as in Python.
    let keys = returned(call(&mut d, &dict, "keys", vec![])?)?;
    println!("dict.keys() = {keys} ({})", keys.type_name());
    // A missing key: the manager answers ('#ERROR', KeyError('missing')).
    let (kind, error) = call(&mut d, &dict, "__getitem__", vec![Value::str("missing")])?;
    match error.as_object() {
        Some(exc) => {
            let class = exc.class().map(|g| g.name().to_owned()).unwrap_or_default();
            println!("{kind}: {class} args={}", exc.args());
        }
        None => println!("{kind}: {error}"),
    }

    let (queue, mut q) = create(&address, &authkey, "Queue")?;
    returned(call(
        &mut q,
        &queue,
        "put",
        vec![Value::tuple(vec![Value::str("job"), Value::Int(7)])],
    )?)?;
    println!(
        "queue.qsize() = {}",
        returned(call(&mut q, &queue, "qsize", vec![])?)?
    );
    println!(
        "queue.get() = {}",
        returned(call(&mut q, &queue, "get", vec![])?)?
    );

    drop((d, q));
    decref(&address, &authkey, &dict)?;
    decref(&address, &authkey, &queue)?;
    Ok(())
}

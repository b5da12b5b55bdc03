//! The `wait` example of the seed: four workers each send ten messages on their own one-way
//! pipe and close it; the parent drains the pipes with `wait` until every one reports EOF.
//! (The seed's workers are processes; here they are threads, which changes nothing for `wait`.)
//!
//! Run with `cargo run -p conn --example seed_wait`.

use std::thread;

use conn::{Connection, Error, pipe_simplex, wait};

fn main() -> Result<(), Error> {
    let mut readers: Vec<Connection> = Vec::new();
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (reader, mut writer) = pipe_simplex()?;
        readers.push(reader);
        workers.push(thread::spawn(move || -> Result<(), Error> {
            for i in 0..10 {
                writer.send(&(i, format!("worker-{worker}")))?;
            }
            writer.close()
        }));
    }
    let mut received = 0;
    while !readers.is_empty() {
        let ready = {
            let objects: Vec<&dyn conn::Waitable> =
                readers.iter().map(|r| r as &dyn conn::Waitable).collect();
            wait(&objects, None)?
        };
        // Walk backwards so removing a finished reader keeps the other positions valid.
        for index in ready.into_iter().rev() {
            match readers[index].recv::<(i32, String)>() {
                Ok((i, name)) => {
                    println!("({i}, '{name}')");
                    received += 1;
                }
                Err(Error::Eof) => {
                    readers.remove(index);
                }
                Err(e) => return Err(e),
            }
        }
    }
    for w in workers {
        w.join()
            .map_err(|_| Error::Io(std::io::Error::other("worker panicked")))??;
    }
    println!("received {received} messages; every pipe reported EOF");
    Ok(())
}

//! Prints the instrument-name grammar description that the drift check pins
//! (`market/schema/instrument-name-v<N>.txt`):
//! `cargo run -q -p ringbolt-market --example instrument-name-grammar > market/schema/instrument-name-v1.txt`.

fn main() {
    print!("{}", ringbolt_market::name::describe());
}

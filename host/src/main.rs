fn main() {
    println!("crisis {}", env!("CARGO_PKG_VERSION"));
}

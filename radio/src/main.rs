//! `lcradio`: the reference push-to-talk radio on the command line (coming next).

fn main() {
    eprintln!("lcradio: not built yet");
}

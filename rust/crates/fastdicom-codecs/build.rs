//! Compiles `csrc/fd_jpeg.c` (our layer over libjpeg-turbo's libjpeg API)
//! against the headers of the libjpeg-turbo that `turbojpeg-sys` builds.

fn main() {
    println!("cargo:rerun-if-changed=csrc/fd_jpeg.c");
    let include = std::env::var("DEP_TURBOJPEG_INCLUDE")
        .expect("turbojpeg-sys did not report its include directory");
    let mut build = cc::Build::new();
    build.file("csrc/fd_jpeg.c").opt_level(3).warnings(true);
    for dir in include.split(',') {
        build.include(dir);
    }
    build.compile("fd_jpeg");
}

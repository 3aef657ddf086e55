use r2unet::model::conv3x3::kernel::Dims;
use r2unet::model::conv3x3::winograd;
fn main() {
    let c: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let side: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let d = Dims {
        batch: 32,
        c_in: c,
        c_out: c,
        h: side,
        w: side,
    };
    let x: Vec<f32> = (0..d.batch * c * side * side)
        .map(|i| (i % 17) as f32 * 0.1)
        .collect();
    let w: Vec<f32> = (0..c * c * 9).map(|i| (i % 13) as f32 * 0.01).collect();
    for _ in 0..200 {
        std::hint::black_box(winograd::forward(&x, &w, d));
    }
}

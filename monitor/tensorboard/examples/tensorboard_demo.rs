//! Writes a small demo run: `cargo run --example tensorboard_demo -- <logdir>/<run>`,
//! then `tensorboard --logdir <logdir>`.

use htsr_tensorboard::{wall_time_now, EventWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let run = std::env::args().nth(1).ok_or("usage: demo <run folder>")?;
    let mut writer = EventWriter::create(&run)?;
    for step in 0..50_i64 {
        let t = wall_time_now();
        let x = step as f64 / 10.0;
        writer.add_scalar("train/loss", (1.0 / (1.0 + x)) as f32, step, t)?;
        writer.add_scalar("layer1/alpha", (2.0 + (x).sin() / 4.0) as f32, step, t)?;
        // A spectrum-like sample: eigenvalues spread over a few decades.
        let eigenvalues: Vec<f64> = (1..=200)
            .map(|i| (i as f64 / 20.0).powf(2.0 + x / 5.0))
            .collect();
        writer.add_histogram("layer1/esd", &eigenvalues, step, t)?;
        if step % 10 == 0 {
            writer.add_text(
                "notes",
                &format!("step **{step}**: alpha ≈ `{:.3}`", 2.0 + x.sin() / 4.0),
                step,
                t,
            )?;
        }
    }
    writer.close()?;
    println!("wrote {}", run);
    Ok(())
}

// figures.h: the PNGs a training run writes into its run directory: grids of ancestral samples
// (the decoder's means g(z), and draws x ~ p(x|z) where they are worth looking at), pairs of test
// inputs and their reconstructions, and the training curves read back from metrics.jsonl and
// test.jsonl.
#pragma once
#include <string>
#include <vector>

#include "apps/common/datasets.h"
#include "apps/common/run_dir.h"
#include "nn/data/images.h"
#include "vae/likelihood.h"
#include "vae/model.h"

namespace gv::app {

// Each pixel as a factor x factor block (nearest neighbour); any number of channels.
data::Image upscale(const data::Image& img, int64_t factor);

// Images (N, C, H, W) in [0,1] as a PNG grid of `nrow` per row.
void write_image_grid(const std::string& path, const Tensor& images, int64_t nrow = 8);

// n ancestral samples from a fixed seed (the same z every call, so successive grids show the model
// changing): samples/<tag>-mean.png, and for a Bernoulli likelihood also samples/<tag>-draw.png.
// Returns the files written.
std::vector<std::string> write_samples(vae::Model& model, const Preprocessing& prep,
                                       const RunDir& dir, const std::string& tag, int64_t n = 64);

// The first up to 32 images of x (preprocessed as the model sees them) and their reconstructions
// mean(p(x | z = mu(x))), as rows of 8 inputs each followed by a row of their reconstructions:
// recon/<tag>.png. Returns the file.
std::string write_reconstructions(vae::Model& model, const Preprocessing& prep,
                                  const RunDir& dir, const std::string& tag, const Tensor& x, int64_t n = 32);

// curves.png: training loss, reconstruction term and regularizer per logged step (metrics.jsonl),
// and the test ELBO at the end of each epoch (test.jsonl). Returns the file.
std::string write_training_curves(const RunDir& dir);

}  // namespace gv::app

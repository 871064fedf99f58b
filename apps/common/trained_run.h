// trained_run.h: a trained VAE loaded back from a genvae-train run directory (or a checkpoint file):
// the training configuration stored in the checkpoint's metadata, the model rebuilt from it with its
// weights (its decoder owns the likelihood family), and the data set preprocessed as in training. Used by every
// program that analyses a trained run (genvae-eval, genvae-sample, genvae-fig2).
#pragma once
#include <memory>
#include <string>

#include "apps/common/datasets.h"
#include "apps/common/train_config.h"
#include "nn/checkpoint.h"
#include "vae/model.h"

namespace gv::app {

struct TrainedRun {
  std::string checkpoint;  // the .safetensors file
  TrainConfig cfg;         // as stored by genvae-train
  nn::TrainState state;    // step and epoch it was saved at
  std::unique_ptr<vae::Model> model;  // in eval mode (a vae::VAE today)
  Shape shape;                      // (C, H, W)
  Tensor test_x;                    // the test set, preprocessed as the model sees it (eval_set)
  Tensor train_x;                   // the training set in [0, 1] (raw), only when asked for
};

// The checkpoint of a run directory (DIR/checkpoint.safetensors) or the file itself; IOError when
// there is none.
std::string checkpoint_of(const std::string& run);

struct LoadOptions {
  std::string data_dir;     // overrides the stored data location ("" = as trained)
  int64_t test_limit = -1;  // test examples to load (-1: all)
  bool with_train = false;  // also load the training split (train_x)
  int64_t train_limit = -1; // training examples (-1: as trained)
  Device device;            // where the model is put (--device); the data stays on the host
};
TrainedRun load_trained_run(const std::string& run, const LoadOptions& o);

// NonFiniteError naming the checkpoint when the model's outputs on the first test images (the
// encoder's mean and variance, the decoder's output at the mean) are not all finite: weights that
// are finite but overflow. Programs whose results would be garbage then (sampling, Fig. 2) call it
// before they start; genvae-eval reports each estimate's finiteness instead.
void check_outputs_finite(TrainedRun& l);

}  // namespace gv::app

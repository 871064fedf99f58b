// samplers.h: drawing from a trained VAE. Ancestral sampling z ~ p(z), x ~ p(x|z); and the Markov
// chain of Proposition 2 (eq. 6), z ~ q(z|x), x ~ p(x|z), which converges to p_data when every
// posterior q(x|z) is in the likelihood family (and the chain is ergodic), even where q(z) != p(z)
// and ancestral samples are poor (the unregularized VAE).
#pragma once
#include <vector>

#include "vae/model.h"

namespace gv::vae {

// The samplers return their tensors on the host, whatever the model's device.
struct Samples {
  Tensor x;     // (N, C, H, W): draws x ~ p(x|z), or the means when `use_mean`
  Tensor mean;  // (N, C, H, W): E[x|z], the decoder's g(z) (undefined for a decoder without one)
  Tensor z;     // (N, Z)
};

// z ~ p(z) = N(0, I) (N, Z) from g, params = decode(z), x ~ p(x|params) (also from g), mean = E[x|z].
// Runs without recording a graph. With use_mean, x is the mean (no pixel noise).
Samples sample_ancestral(Model& model, int64_t n, Generator& g, bool use_mean = false);
// Runs `steps` transitions of the chain (6) from x0 (N, C, H, W): z^(t) ~ q(z|x^(t)) (a reparameterized
// draw), x^(t+1) ~ p(x|z^(t)); returns the state after each of `keep` evenly spaced steps (the last
// step always among them; which ones: markov_chain_kept_steps). With use_mean the next state is the
// mean E[x|z] instead of a draw (a deterministic decoder; its x is then also the mean).
std::vector<Samples> sample_markov_chain(Model& model, const Tensor& x0, int64_t steps, int64_t keep, Generator& g,
                                         bool use_mean = false);
// The 1-based step numbers kept: floor((i+1) steps / keep) for i = 0..keep-1, so steps=10, keep=3
// keeps {3, 6, 10}. Needs 1 <= keep <= steps.
std::vector<int64_t> markov_chain_kept_steps(int64_t steps, int64_t keep);

}  // namespace gv::vae

// eval.cpp: genvae-eval, the measurements of a trained VAE. Given a run directory (or a checkpoint
// file), rebuilds the model from the configuration stored in the checkpoint, loads it, and reports
// on the test set (preprocessed as in training): the ELBO with its reconstruction and KL terms,
// the importance-weighted log-likelihood bound, KL per latent dimension, active units and the
// mutual information I_q(x; z) with its log M ceiling; as a table on stdout and as eval.json.
// A result that is not finite is never reported as a figure: eval.json then holds the finite ones
// and an "error" field naming the others, and the exit status is 3.
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/datasets.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/common/trained_run.h"
#include "nn/checkpoint.h"
#include "vae/estimators.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

namespace {

constexpr int kExitNonFinite = 3;  // as genvae-train

struct EvalOptions {
  std::string run;  // run directory or checkpoint file
  std::string out;  // eval.json ("" = beside the checkpoint)
  std::string data_dir;
  int64_t iwae_k = 100, iwae_examples = 1000, mi_examples = 1000, test_limit = -1, batch = 100, threads = 0;
  std::string device = "cpu";
  double au_threshold = 0.01;
  uint64_t seed = 1;
};

int parse_flags(int argc, char** argv, EvalOptions& o) {
  CLI::App app{"genvae-eval: evaluate a trained VAE (a genvae-train run directory or checkpoint) on its test set"};
  app.add_option("run", o.run, "run directory (its checkpoint.safetensors is used) or a checkpoint file")->required();
  app.add_option("--out", o.out, "where to write the JSON report (default: eval.json beside the checkpoint)");
  app.add_option("--data-dir", o.data_dir, "the data set's location, when it moved since training");
  app.add_option("--test-limit", o.test_limit, "evaluate the ELBO, KL per dimension and active units on N test examples (-1: all)")
      ->check(at_least(-1))->capture_default_str();
  app.add_option("--iwae-k", o.iwae_k, "importance samples per example of the IWAE bound")
      ->check(at_least(1))->capture_default_str();
  app.add_option("--iwae-examples", o.iwae_examples, "test examples for the IWAE bound (it costs k decoder passes each)")
      ->check(at_least(1))->capture_default_str();
  app.add_option("--mi-examples", o.mi_examples, "test examples M for the mutual information (its ceiling is log M)")
      ->check(at_least(2))->capture_default_str();
  app.add_option("--au-threshold", o.au_threshold, "a latent dimension is active when Cov_x(E_q[z_j]) exceeds this")
      ->check(number_above(0, true))->capture_default_str();
  app.add_option("--batch", o.batch, "examples per batch")->check(int_range(1, int64_t(1) << 20))->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the estimators' z samples")->check(uint64_any())->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: every core)")->check(int_range(0, 1024))->capture_default_str();
  add_device_flag(app, o.device);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

// The model as trained: its configuration from the checkpoint's metadata, then its weights.
TrainedRun load(const EvalOptions& o) {
  LoadOptions lo;
  lo.device = checked_device(o.device);
  lo.data_dir = o.data_dir;
  lo.test_limit = o.test_limit;
  return load_trained_run(o.run, lo);
}

Tensor first(const Tensor& x, int64_t n) { return x.slice(0, 0, std::min(n, x.size(0))).contiguous(); }

// Runs f, and adds how long it took to the report under `key`.
template <class F>
auto timed(json& seconds, const std::string& key, F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = f();
  seconds[key] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Runs an estimator; a result that is not finite (NonFiniteError) is recorded under errors[key]
// instead, so the report keeps the figures that are finite and says which ones are not.
template <class F>
void measure(json& errors, json& seconds, const std::string& key, F&& f) {
  try {
    timed(seconds, key, [&] {
      f();
      return 0;
    });
  } catch (const NonFiniteError& e) {
    errors[key] = e.what();
  }
}

json evaluate(TrainedRun& l, const EvalOptions& o) {
  json seconds = json::object(), j = json::object(), errors = json::object();
  Generator g(o.seed);
  vae::Model& m = *l.model;
  const Tensor& x = l.test_x;
  Tensor xi = first(x, o.iwae_examples), xm = first(x, o.mi_examples);
  j["checkpoint"] = l.checkpoint;
  j["step"] = l.state.step;
  j["epochs_completed"] = l.state.epoch;
  j["data"] = l.cfg.data;
  j["likelihood"] = l.cfg.likelihood;
  j["regularizer"] = l.cfg.regularizer;
  j["test_examples"] = x.size(0);
  j["iwae_k"] = o.iwae_k;
  j["iwae_examples"] = xi.size(0);
  j["active_units_threshold"] = o.au_threshold;
  j["latent"] = l.cfg.latent;
  j["mi_examples"] = xm.size(0);
  measure(errors, seconds, "elbo", [&] {
    auto elbo = vae::test_elbo(m, x, o.batch, g);
    j["elbo"] = elbo.elbo, j["reconstruction"] = elbo.reconstruction, j["kl"] = elbo.kl;
  });
  measure(errors, seconds, "iwae_log_likelihood",
          [&] { j["iwae_log_likelihood"] = vae::iwae_log_likelihood(m, xi, o.iwae_k, o.batch, g); });
  measure(errors, seconds, "kl_per_dimension", [&] { j["kl_per_dimension"] = vae::kl_per_dimension(m, x, o.batch); });
  measure(errors, seconds, "active_units",
          [&] { j["active_units"] = vae::active_units(m, x, o.batch, o.au_threshold); });
  measure(errors, seconds, "mutual_information", [&] {
    auto mi = vae::mutual_information(m, xm, o.batch, g);
    j["mutual_information"] = mi.mi, j["mi_ceiling"] = mi.ceiling;
  });
  // a discrete family's likelihoods in bits per dimension (CIFAR-10's unit): -log p / (D log 2)
  if (m.decoder().likelihood().discrete()) {
    const double d = double(shape_numel(Shape(x.shape().begin() + 1, x.shape().end()))) * std::log(2.0);
    if (j.contains("iwae_log_likelihood")) j["iwae_bits_per_dim"] = -j["iwae_log_likelihood"].get<double>() / d;
    if (j.contains("elbo")) j["elbo_bits_per_dim"] = -j["elbo"].get<double>() / d;
  }
  j["seconds"] = seconds;
  if (!errors.empty()) j["error"] = {{"message", "some results are not finite; they are left out of this report"},
                                     {"not_finite", errors}};
  return j;
}

void print_table(const json& j) {
  auto row = [](const std::string& name, const std::string& value, const std::string& note = "") {
    fmt::print("  {:<28} {:>14}  {}\n", name, value, note);
  };
  auto num = [](double v) { return fmt::format("{:.4f}", v); };
  fmt::print("{} (step {}, {} test examples)\n", j["checkpoint"].get<std::string>(), j["step"].get<int64_t>(),
             j["test_examples"].get<int64_t>());
  row("test ELBO (nats)", num(j["elbo"]));
  row("  reconstruction E log p", num(j["reconstruction"]));
  row("  KL(q(z|x) || p(z))", num(j["kl"]));
  row(fmt::format("IWAE log p(x), k={}", j["iwae_k"].get<int64_t>()), num(j["iwae_log_likelihood"]),
      fmt::format("on {} examples", j["iwae_examples"].get<int64_t>()));
  if (j.contains("iwae_bits_per_dim")) {
    row("  test NLL, bits per dim", num(j["iwae_bits_per_dim"]), "by the IWAE bound");
    row("  -ELBO, bits per dim", num(j["elbo_bits_per_dim"]));
  }
  row("active units", fmt::format("{} / {}", j["active_units"].get<int64_t>(), j["latent"].get<int64_t>()),
      fmt::format("Cov(E_q z_j) > {}", j["active_units_threshold"].get<double>()));
  row("mutual information I_q(x;z)", num(j["mutual_information"]),
      fmt::format("ceiling log M = {:.4f} (M = {})", j["mi_ceiling"].get<double>(), j["mi_examples"].get<int64_t>()));
  fmt::print("  KL per dimension:");
  int i = 0;
  for (double v : j["kl_per_dimension"]) fmt::print("{}{:.3f}", i++ % 10 == 0 ? "\n    " : " ", v);
  fmt::print("\n");
}

}  // namespace

int main(int argc, char** argv) {
  EvalOptions o;
  if (int rc = parse_flags(argc, argv, o); rc >= 0) return rc;
  try {
    set_threads(o.threads);
    TrainedRun l = load(o);
    json report = evaluate(l, o);
    std::string out = o.out.empty() ? (fs::path(l.checkpoint).parent_path() / "eval.json").string() : o.out;
    write_json_file(out, report);
    if (report.contains("error")) {
      for (const auto& [key, message] : report["error"]["not_finite"].items())
        std::fprintf(stderr, "genvae-eval: %s: not finite: %s: %s\n", l.checkpoint.c_str(), key.c_str(),
                     message.get<std::string>().c_str());
      std::fprintf(stderr, "genvae-eval: wrote the finite results only to %s (its \"error\" field lists the others)\n",
                   out.c_str());
      return kExitNonFinite;
    }
    print_table(report);
    fmt::print("wrote {}\n", out);
  } catch (const NonFiniteError& e) {  // a checkpoint weight
    std::fprintf(stderr, "genvae-eval: %s\n", e.what());
    return kExitNonFinite;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-eval: %s\n", e.what());
    return 1;
  }
  return 0;
}

// compare.cpp: genvae-compare, runs side by side (the Fig. 5 view of the PixelVAE runs). Reads each
// genvae-train run folder's config.json and information.jsonl, and when present its eval.json
// (genvae-eval: the IWAE bound) and samples-both.json (genvae-sample --classifier: sample quality),
// and writes:
//   OUT.png  I_q(x;z) (with the ceiling log M of its estimator), KL(q(z|x)||p(z)) and the
//            reconstruction NLL per pixel against the training step, one line per run;
//   OUT.md   a table of the last logged figures per run (the README's experiments table);
//   OUT.json the same figures.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/plot.h"
#include "apps/common/run_dir.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& p) {
  std::ifstream f(p);
  GV_CHECK(f.good(), IOError, "cannot read {}", p.string());
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    GV_THROW(IOError, "{} is not valid JSON: {}", p.string(), e.what());
  }
}

// "ELBO", "R = 0", "KL x 24.5" ...: what the objective was, from the run's flags
std::string objective_label(const json& c) {
  const std::string r = c.value("regularizer", "?");
  const double lambda = c.value("lambda", 1.0);
  if (r == "none" || lambda == 0) return "R = 0";
  if (r == "kl" && lambda == 1) return "ELBO";
  return fmt::format("{} x {:g}", r, lambda);
}

double num(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}
std::string cell(double v, const char* fmtspec = "{:.3f}") { return std::isfinite(v) ? fmt::format(fmt::runtime(fmtspec), v) : "-"; }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> runs, labels;
  std::string out;
  CLI::App app{"genvae-compare: genvae-train runs side by side: I_q(x;z), KL and NLL per pixel against the step "
               "(OUT.png), and a table of their last figures with the IWAE bound and sample quality when "
               "genvae-eval and genvae-sample --classifier have run (OUT.md, OUT.json)"};
  app.add_option("runs", runs, "run folders")->required();
  app.add_option("--labels", labels, "a name per run (default: its objective, e.g. ELBO, R = 0, kl x 24.5)")->delimiter(',');
  app.add_option("--out", out, "the PNG to write; OUT.md and OUT.json go beside it")->required();
  try {
    app.parse(argc, argv);
    if (!labels.empty() && labels.size() != runs.size())
      throw CLI::ValidationError("--labels", fmt::format("needs one name per run ({}), got {}", runs.size(), labels.size()));
    if (fs::path(out).extension() != ".png") throw CLI::ValidationError("--out", "must name a .png file, got " + out);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    Plot mi{"I_q(x;z) (appendix A.3's estimate)", "step", "nats", {}}, kl{"KL(q(z|x) || p(z))", "step", "nats", {}},
        nll{"reconstruction NLL per pixel", "step", "nats", {}};
    // discrete families on every run (CIFAR-10's logistic mixtures): the NLL in bits per dimension
    bool bits = true;
    json rows = json::array();
    double ceiling = std::nan("");
    for (size_t i = 0; i < runs.size(); ++i) {
      const fs::path dir(runs[i]);
      const json c = read_json(dir / "config.json");
      const fs::path info = dir / "information.jsonl";
      GV_CHECK(fs::is_regular_file(info), IOError, "{}: no information.jsonl (a genvae-train run folder is expected)",
               dir.string());
      const std::vector<json> lines = read_jsonl(info.string());
      GV_CHECK(!lines.empty(), IOError, "{} is empty: the run logged no information yet", info.string());
      const std::string name = labels.empty() ? objective_label(c) : labels[i];
      Series a{name, {}, {}, true}, b{name, {}, {}, true}, d{name, {}, {}, true};
      for (const json& l : lines) bits = bits && l.contains("nll_bits_per_dim");
      for (const json& l : lines) {
        const double step = num(l, "step");
        a.x.push_back(step), a.y.push_back(num(l, "mi"));
        b.x.push_back(step), b.y.push_back(num(l, "kl"));
        d.x.push_back(step), d.y.push_back(num(l, bits ? "nll_bits_per_dim" : "nll_per_pixel"));
        ceiling = num(l, "mi_ceiling");
      }
      mi.series.push_back(a), kl.series.push_back(b), nll.series.push_back(d);
      const json& last = lines.back();
      json row{{"run", dir.string()},         {"label", name},
               {"decoder", c.value("decoder", "factorized")}, {"regularizer", c.value("regularizer", "?")},
               {"lambda", c.value("lambda", 1.0)}, {"latent", c.value("latent", 0)},
               {"step", last["step"]},        {"mi", last["mi"]},
               {"mi_ceiling", last["mi_ceiling"]}, {"kl", last["kl"]},
               {"nll_per_pixel", last["nll_per_pixel"]}, {"data", c.value("data", "?")}};
      if (last.contains("nll_bits_per_dim")) row["nll_bits_per_dim"] = last["nll_bits_per_dim"];
      if (fs::is_regular_file(dir / "eval.json")) {
        const json e = read_json(dir / "eval.json");
        if (e.contains("iwae_log_likelihood") && e["iwae_log_likelihood"].is_number())
          row["test_nll_iwae"] = -e["iwae_log_likelihood"].get<double>(), row["iwae_k"] = e.value("iwae_k", 0),
          row["iwae_examples"] = e.value("iwae_examples", 0);
        if (e.contains("iwae_bits_per_dim")) row["test_bits_per_dim_iwae"] = e["iwae_bits_per_dim"];
      }
      if (fs::is_regular_file(dir / "samples-both.json")) {
        const json s = read_json(dir / "samples-both.json");
        if (s.contains("quality")) row["quality"] = s["quality"];
      }
      rows.push_back(row);
    }
    if (std::isfinite(ceiling) && !mi.series.empty()) {
      Series top{fmt::format("log M = {:.2f}", ceiling), {mi.series[0].x.front(), mi.series[0].x.back()}, {ceiling, ceiling}};
      mi.series.push_back(top);
    }
    if (bits) nll.title = "reconstruction NLL, bits per dimension", nll.ylabel = "bits/dim";
    if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
    write_plots_png(out, {mi, kl, nll}, 3);
    const fs::path stem = fs::path(out).replace_extension("");
    // the table
    // the sample-quality columns are the MNIST classifier's (genvae-sample --classifier); none elsewhere
    const bool cifar = !rows.empty() && rows[0]["data"] == "cifar10";
    std::string md =
        cifar ? "| run | objective | step | I_q(x;z) (of log M) | KL | NLL/pixel | test NLL (IWAE) |\n"
                "|---|---|---|---|---|---|---|\n"
              : "| run | objective | step | I_q(x;z) (of log M) | KL | NLL/pixel | test NLL (IWAE) | ancestral: confidence, "
                "label entropy | chain: confidence, label entropy |\n|---|---|---|---|---|---|---|---|---|\n";
    for (const json& r : rows) {
      auto quality = [&](const char* k) {
        if (!r.contains("quality") || !r["quality"].contains(k)) return std::string("-");
        return fmt::format("{:.3f}, {:.3f}", r["quality"][k]["mean_confidence"].get<double>(),
                           r["quality"][k]["label_entropy"].get<double>());
      };
      const double iw = r.contains("test_nll_iwae") ? r["test_nll_iwae"].get<double>() : std::nan("");
      const std::string cols = fmt::format("| {} | {} | {} | {} ({}) | {} | {} | {} |", r["run"].get<std::string>(),
                        r["label"].get<std::string>(), r["step"].get<int64_t>(), cell(num(r, "mi")),
                        cell(num(r, "mi_ceiling"), "{:.2f}"), cell(num(r, "kl"), "{:.2f}"),
                        bits ? cell(num(r, "nll_bits_per_dim"), "{:.3f} bits/dim") : cell(num(r, "nll_per_pixel"), "{:.4f}"),
                        std::isfinite(iw)
                            ? fmt::format("{:.2f}{} (k = {}, {} images)", iw,
                                          r.contains("test_bits_per_dim_iwae")
                                              ? fmt::format(" nats = {:.3f} bits/dim", r["test_bits_per_dim_iwae"].get<double>())
                                              : std::string(),
                                          r["iwae_k"].get<int64_t>(), r["iwae_examples"].get<int64_t>())
                            : std::string("-"));
      md += cifar ? cols + "\n" : fmt::format("{} {} | {} |\n", cols, quality("ancestral"), quality("chain_final"));
    }
    if (cifar)
      md += "\nPublished test NLLs on CIFAR-10, bits/dim: PixelCNN++ 2.92, VLAE 2.95, Gated PixelCNN 3.03, PixelCNN "
            "3.14 (models of tens of millions of parameters trained for days on GPUs).\n";
    else if (!rows.empty() && rows[0]["data"] == "mnist")
      md += "\nPublished test NLLs on binarized MNIST, nats: PixelCNN 81.30 (static binarization), VLAE 79.03 (static) "
            "and 78.53 (dynamic), PixelVAE about 79.7. Real test digits: see each run's samples-both.json quality.test.\n";
    {
      std::ofstream f(stem.string() + ".md");
      f << md;
      GV_CHECK(f.good(), IOError, "cannot write {}.md", stem.string());
    }
    write_json_file(stem.string() + ".json", json{{"runs", rows}});
    fmt::print("{}wrote {}, {}.md, {}.json\n", md, out, stem.string(), stem.string());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-compare: %s\n", e.what());
    return 1;
  }
  return 0;
}

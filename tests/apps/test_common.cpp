// test_common.cpp: the apps' shared library (apps/common): plot ticks and labels, the bitmap font,
// line plots (NaN points skipped, colours where the data is), the run directory's rules and JSON
// lines, the training configuration's JSON round trip, and the preprocessing per likelihood.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "apps/common/datasets.h"
#include "apps/common/font.h"
#include "apps/common/plot.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "engine/ops.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_apps_test_common {

namespace {

// A fresh empty folder under the system's temporary folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / fs::path("genvae-apps-" + std::to_string(::getpid()) + "-" +
                                                std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

int64_t count_color(const data::Image& img, Rgb c) {
  int64_t n = 0;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x)
      n += img.at(y, x, 0) == c.r && img.at(y, x, 1) == c.g && img.at(y, x, 2) == c.b;
  return n;
}

}  // namespace

TEST_CASE("nice_ticks: steps of 1, 2 or 5 times a power of ten, inside the range") {
  auto t = nice_ticks(0, 1);
  REQUIRE(t.size() == 6);
  CHECK(t.front() == 0.0);
  CHECK(t.back() == doctest::Approx(1.0));
  CHECK(t[1] == doctest::Approx(0.2));
  t = nice_ticks(-437.2, -96.5);
  REQUIRE(t.size() >= 3);
  for (size_t i = 0; i < t.size(); ++i) {
    CHECK(t[i] >= -437.2);
    CHECK(t[i] <= -96.5);
    if (i) CHECK(t[i] - t[i - 1] == doctest::Approx(50.0));
  }
  t = nice_ticks(1e-7, 3e-7);
  CHECK(t.size() >= 3);
  CHECK_THROWS_AS(nice_ticks(1, 1), ValueError);
  CHECK_THROWS_AS(nice_ticks(0, std::numeric_limits<double>::infinity()), ValueError);
}

TEST_CASE("tick_label: as many decimals as the step needs; no -0") {
  CHECK(tick_label(0.25, 0.05) == "0.25");
  CHECK(tick_label(1500, 500) == "1500");
  CHECK(tick_label(-300, 50) == "-300");
  CHECK(tick_label(-1e-17, 0.1) == "0.0");
  CHECK(tick_label(2e-6, 1e-6) == "2e-06");
  CHECK(tick_label(3e7, 1e7) == "3e+07");
}

TEST_CASE("font: every character a plot label uses has a glyph; text width") {
  for (char c : std::string("0123456789.-+eE:()[]/_=% ,|<>*'?!#"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    CHECK_MESSAGE(has_glyph(c), "no glyph for '", c, "'");
  CHECK_FALSE(has_glyph('\x01'));
  CHECK(text_width("") == 0);
  CHECK(text_width("ab") == 11);
  CHECK(text_width("ab", 2) == 22);
  // '1' has its stem in the middle column; ' ' has no pixel
  CHECK(glyph_pixel('1', 2, 3));
  CHECK_FALSE(glyph_pixel('1', 0, 3));
  for (int y = 0; y < kGlyphHeight; ++y)
    for (int x = 0; x < kGlyphWidth; ++x) CHECK_FALSE(glyph_pixel(' ', x, y));
  // descenders reach the eighth row; capitals do not
  CHECK((glyph_pixel('g', 1, 7) || glyph_pixel('g', 2, 7) || glyph_pixel('g', 3, 7)));
  for (int x = 0; x < kGlyphWidth; ++x) CHECK_FALSE(glyph_pixel('E', x, 7));
}

TEST_CASE("draw_text stays inside the image and draws the text's colour") {
  data::Image img(20, 40, 3);
  draw_text(img, 30, 15, "TEXT", {255, 0, 0});  // mostly outside: clipped, no crash
  draw_text(img, -10, -5, "x", {255, 0, 0});
  data::Image img2(10, 40, 3);
  draw_text(img2, 1, 1, "E", {0, 255, 0});
  CHECK(count_color(img2, {0, 255, 0}) == 5 + 5 + 4 + 4);  // E: three bars (5, 4, 5) and 4 side pixels
}

TEST_CASE("render_plot: lines in the series' colours, NaN and inf points skipped") {
  Plot p;
  p.title = "loss";
  p.xlabel = "step";
  p.ylabel = "nats";
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  p.series.push_back({"train", {0, 1, 2, 3, 4}, {5, 4, nan, 2, 1}});
  p.series.push_back({"test", {0, 4, inf}, {4.5, 1.5, 3}, true});
  data::Image img = render_plot(p);
  CHECK(img.width == p.width);
  CHECK(img.height == p.height);
  CHECK(img.channels == 3);
  CHECK(count_color(img, {31, 119, 180}) > 100);  // the first palette colour: the train line
  CHECK(count_color(img, {255, 127, 14}) > 100);  // the second: the test line
  // all points NaN: an empty frame, no crash
  Plot empty;
  empty.series.push_back({"none", {nan, nan}, {nan, 1}});
  CHECK_NOTHROW(render_plot(empty));
  Plot bad;
  bad.series.push_back({"bad", {1, 2}, {1}});
  CHECK_THROWS_AS(render_plot(bad), ValueError);
}

TEST_CASE("render_plots tiles the plots; write_plots_png writes a PNG") {
  Plot a, b, c;
  a.series.push_back({"a", {0, 1}, {0, 1}});
  data::Image img = render_plots({a, b, c}, 2);
  CHECK(img.width == 2 * a.width);
  CHECK(img.height == 2 * a.height);
  TempDir dir;
  std::string path = (dir.path / "p.png").string();
  write_plots_png(path, {a, b});
  data::Image back = data::read_image(path);
  CHECK(back.width == 2 * a.width);
  CHECK(back.height == a.height);
}

TEST_CASE("RunDir: a non-empty folder needs --resume or --force; --force deletes only a run") {
  TempDir tmp;
  fs::path run = tmp.path / "run";
  {
    RunDir d(run.string(), RunDirMode::create);  // creates it
    CHECK(fs::is_directory(run));
    d.write_config(json{{"latent", 4}});
    d.append_metrics(json{{"step", 1}, {"loss", 2.5}});
    d.append_metrics(json{{"step", 2}, {"loss", 2.0}});
    CHECK(d.read_config()["latent"] == 4);
    auto rows = read_jsonl(d.metrics_path());
    REQUIRE(rows.size() == 2);
    CHECK(rows[1]["loss"] == 2.0);
    CHECK(d.samples_png("epoch-001", "mean") == (run / "samples" / "epoch-001-mean.png").string());
    CHECK(fs::is_directory(run / "samples"));
  }
  CHECK_THROWS_AS(RunDir(run.string(), RunDirMode::create), IOError);
  {
    RunDir d(run.string(), RunDirMode::resume);
    RunDir::truncate_after(d.metrics_path(), "step", 1);
    CHECK(read_jsonl(d.metrics_path()).size() == 1);
  }
  RunDir forced(run.string(), RunDirMode::force);
  CHECK_FALSE(fs::exists(run / "config.json"));
  CHECK(fs::is_directory(run));
  // a folder with other files is never deleted; an empty one is fine
  fs::path other = tmp.path / "other";
  fs::create_directories(other);
  CHECK_NOTHROW(RunDir(other.string(), RunDirMode::create));
  std::ofstream(other / "keep.txt") << "x";
  CHECK_THROWS_AS(RunDir(other.string(), RunDirMode::force), IOError);
  CHECK(fs::exists(other / "keep.txt"));
  CHECK_THROWS_AS(RunDir(other.string(), RunDirMode::resume), IOError);  // no config.json
  // a bad JSON line names the file and line
  std::ofstream(other / "bad.jsonl") << "{\"step\": 1}\nnot json\n";
  CHECK_THROWS_WITH_AS(read_jsonl((other / "bad.jsonl").string()), doctest::Contains("line 2"), IOError);
}

TEST_CASE("TrainConfig: every flag round-trips through JSON; derived facts are ignored, unknown keys refused") {
  TrainConfig c;
  c.data = "folder:/x";
  c.latent = 7;
  c.lambda = 0.25;
  c.seed = 99;
  c.grayscale = true;
  c.regularizer = "mmd";
  json j = to_json(c);
  CHECK(j["hidden-layers"] == 2);
  CHECK(j["debug-nan-at-step"] == 0);
  j["data-shape"] = {1, 28, 28};  // derived facts stored beside the flags
  TrainConfig d = train_config_from_json(j, "run/config.json");
  CHECK(to_json(d) == to_json(c));
  // each refusal names the file and the key
  CHECK_THROWS_WITH_AS(train_config_from_json(json{{"latent", "many"}}, "f.json"),
                       doctest::Contains("f.json: key \"latent\" must be an integer, got \"many\" (string)"), ValueError);
  CHECK_THROWS_WITH_AS(train_config_from_json(json{{"latent", 2.5}}, "f.json"),
                       doctest::Contains("key \"latent\" must be an integer"), ValueError);
  CHECK_THROWS_WITH_AS(train_config_from_json(json{{"grayscale", 1}}, "f.json"),
                       doctest::Contains("key \"grayscale\" must be true or false"), ValueError);
  CHECK_THROWS_WITH_AS(train_config_from_json(json{{"latnet", 4}}, "f.json"),
                       doctest::Contains("f.json: unknown key \"latnet\""), ValueError);
  // a value of the right type still passes its flag's check
  CHECK_THROWS_WITH_AS(train_config_from_json(json{{"latent", 0}}, "f.json"),
                       doctest::Contains("f.json: --latent: must be an integer in 1..4096, got 0"), ValueError);
  CHECK_THROWS_WITH_AS(train_config_from_json(json{{"seed", -1}}, "f.json"),
                       doctest::Contains("--seed: must be an integer in 0..18446744073709551615, got -1"), ValueError);
  CHECK_THROWS_WITH_AS(train_config_from_json(json::array({1, 2}), "f.json"),
                       doctest::Contains("expected a JSON object"), ValueError);
  // a float field given as an integer is fine; a long seed survives
  TrainConfig f = train_config_from_json(json{{"lambda", 2}, {"seed", 18446744073709551615ull}, {"grayscale", false}}, "f");
  CHECK(f.lambda == 2.0);
  CHECK(f.seed == 18446744073709551615ull);
  CHECK_FALSE(f.grayscale);
  CHECK(stored_shape(json{{"data-shape", {1, 28, 28}}}, "f") == Shape{1, 28, 28});
  CHECK_THROWS_WITH_AS(stored_shape(json{{"data-shape", {1, -28}}}, "f"), doctest::Contains("positive sizes"), ValueError);
  CLI::App app;
  TrainConfig e;
  add_train_flags(app, e);
  CHECK(resumable_flag("epochs"));
  CHECK_FALSE(resumable_flag("latent"));
  // every flag of the command line is a key of the JSON form
  for (const CLI::Option* o : app.get_options())
    if (!o->get_lnames().empty() && o->get_lnames()[0] != "help")
      CHECK_MESSAGE(j.contains(o->get_lnames()[0]), "config JSON lacks --", o->get_lnames()[0]);
}

TEST_CASE("Preprocessing matches the likelihood") {
  Tensor x = Tensor::from_list({0.0, 0.2, 0.5, 1.0}, {1, 1, 2, 2});
  Generator g(3);
  CHECK(Preprocessing::for_likelihood("bernoulli").kind() == PixelTransform::binarize);
  CHECK(Preprocessing::for_likelihood("gaussian").kind() == PixelTransform::identity);
  CHECK(Preprocessing::for_likelihood("gaussian-learned").kind() == PixelTransform::dequantize);
  CHECK(Preprocessing::for_likelihood("categorical256").kind() == PixelTransform::quantize8);
  CHECK(Preprocessing::for_likelihood("logistic-mixture").kind() == PixelTransform::to_signed);
  CHECK_THROWS_AS(Preprocessing::for_likelihood("poisson"), ValueError);
  // binarize: values in {0, 1}; the eval set is the same every time
  auto bin = Preprocessing::for_likelihood("bernoulli");
  for (float v : bin.train_batch(x, g).to_vector<float>()) CHECK((v == 0.0f || v == 1.0f));
  CHECK(bin.eval_set(x).to_vector<float>() == bin.eval_set(x).to_vector<float>());
  // to_signed: [-1, 1], and to_display maps it back
  auto sig = Preprocessing::for_likelihood("logistic-mixture");
  auto s = sig.train_batch(x, g).to_vector<float>();
  CHECK(s.front() == doctest::Approx(-1.0));
  CHECK(s.back() == doctest::Approx(1.0));
  auto back = sig.to_display(sig.train_batch(x, g)).to_vector<float>();
  CHECK(back[2] == doctest::Approx(128.0 / 255.0));  // 0.5 lies between 8-bit values: rounded to 128/255
  // categorical256: the 8-bit grid
  for (float v : Preprocessing::for_likelihood("categorical256").train_batch(x, g).to_vector<float>())
    CHECK(std::abs(v * 255.0f - std::round(v * 255.0f)) < 1e-4f);
  // dequantize: within [0, 1)
  for (float v : Preprocessing::for_likelihood("gaussian-learned").train_batch(x, g).to_vector<float>()) {
    CHECK(v >= 0.0f);
    CHECK(v < 1.0f);
  }
  CHECK(preprocessing_help().find("logistic-mixture") != std::string::npos);
}

TEST_CASE("data names and where the data is looked for") {
  CHECK(valid_data_name("mnist"));
  CHECK(valid_data_name("fashion-mnist"));
  CHECK(valid_data_name("cifar10"));
  CHECK(valid_data_name("folder:/some/where"));
  CHECK_FALSE(valid_data_name("folder:"));
  CHECK_FALSE(valid_data_name("svhn"));
  DataSpec s;
  s.name = "folder:/imgs";
  CHECK(resolve_data_path(s) == "/imgs");
  s.name = "mnist";
  s.dir = "/data/m";
  CHECK(resolve_data_path(s) == "/data/m");
  s.name = "fashion-mnist";
  s.dir = "";
  ::setenv("GENVAE_FASHION_MNIST_DIR", "/fm", 1);
  CHECK(resolve_data_path(s) == "/fm");
  ::unsetenv("GENVAE_FASHION_MNIST_DIR");
  CHECK(resolve_data_path(s) == "/usr/share/datasets/fashion-mnist");
  s.name = "folder:/nowhere/at/all";
  CHECK_THROWS_AS(load_data(s), IOError);
}

namespace {
// The validator's verdict on s: "" when accepted.
std::string verdict(const CLI::Validator& v, std::string s) { return v(s); }

// An IDX file of unsigned bytes: magic 0x0000080N, big-endian dims, then zeros.
void write_idx(const fs::path& p, const std::vector<uint32_t>& dims, uint8_t fill = 0) {
  std::ofstream f(p, std::ios::binary);
  const uint8_t magic[4] = {0, 0, 8, (uint8_t)dims.size()};
  f.write((const char*)magic, 4);
  size_t n = 1;
  for (uint32_t d : dims) {
    const uint8_t be[4] = {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)};
    f.write((const char*)be, 4);
    n *= d;
  }
  std::vector<char> body(n, (char)fill);
  f.write(body.data(), (std::streamsize)n);
}
}  // namespace

TEST_CASE("flag checks: not a number, not an integer, out of range, a sign for an unsigned setting") {
  CHECK(verdict(int_range(1, 4096), "20") == "");
  CHECK(verdict(int_range(1, 4096), "+20") == "");
  CHECK(verdict(int_range(1, 4096), "0") == "must be an integer in 1..4096, got 0");
  CHECK(verdict(int_range(1, 4096), "abc") == "not a number: 'abc' (expected an integer in 1..4096)");
  CHECK(verdict(int_range(1, 4096), "1.5") == "not an integer: '1.5' (expected an integer in 1..4096)");
  CHECK(verdict(int_range(1, 4096), "1e3") == "not an integer: '1e3' (expected an integer in 1..4096)");
  CHECK(verdict(int_range(1, 4096), "") == "not a number: '' (expected an integer in 1..4096)");
  CHECK(verdict(int_range(1, 4096), " 5") == "not a number: ' 5' (expected an integer in 1..4096)");
  CHECK(verdict(at_least(-1), "-1") == "");
  CHECK(verdict(at_least(-1), "99999999999999999999") == "must be an integer >= -1, got 99999999999999999999");
  CHECK(verdict(uint64_any(), "18446744073709551615") == "");
  CHECK(verdict(uint64_any(), "0") == "");
  CHECK(verdict(uint64_any(), "-1") == "must be an integer in 0..18446744073709551615, got -1");
  CHECK(verdict(uint64_any(), "+1") == "must be an integer in 0..18446744073709551615, got +1");
  CHECK(verdict(uint64_any(), "18446744073709551616") == "must be an integer in 0..18446744073709551615, got 18446744073709551616");
  CHECK(verdict(uint64_any(), "seven") == "not a number: 'seven' (expected an integer in 0..18446744073709551615)");
  CHECK(verdict(number_above(0, false), "1e-3") == "");
  CHECK(verdict(number_above(0, false), "0") == "must be a finite number > 0, got 0");
  CHECK(verdict(number_above(0, true), "nan") == "not a number: 'nan' (expected a number >= 0)");
  CHECK(verdict(number_above(0, true), "inf") == "must be a finite number >= 0, got inf");
  CHECK(verdict(number_range(0, 0.999), "1") == "must be a number in [0, 0.999], got 1");
  CHECK(verdict(number_range(0, 0.999), "x") == "not a number: 'x' (expected a number in [0, 0.999])");
}

TEST_CASE("load_data: train and test splits of different shapes name both files and both shapes") {
  TempDir dir;
  const fs::path d = dir.path / "idx";
  fs::create_directories(d);
  write_idx(d / "train-images-idx3-ubyte", {4, 28, 28});
  write_idx(d / "train-labels-idx1-ubyte", {4});
  write_idx(d / "t10k-images-idx3-ubyte", {3, 14, 14});
  write_idx(d / "t10k-labels-idx1-ubyte", {3});
  DataSpec spec;
  spec.dir = d.string();
  std::string msg;
  try {
    load_data(spec);
  } catch (const IOError& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("the training and test splits disagree") != std::string::npos);
  CHECK(msg.find((d / "train-images-idx3-ubyte").string() + " holds images of shape [1, 28, 28]") != std::string::npos);
  CHECK(msg.find((d / "t10k-images-idx3-ubyte").string() + " holds [1, 14, 14]") != std::string::npos);
  // the test split alone loads, and then disagrees with a model trained on 28x28
  spec.with_train = false;
  LoadedData t = load_data(spec);
  CHECK(t.shape == Shape{1, 14, 14});
  CHECK_THROWS_WITH_AS(check_data_shape(t, {1, 28, 28}, "the checkpoint c.safetensors"),
                       doctest::Contains("does not fit the checkpoint c.safetensors: it was trained on images of shape "
                                         "[1, 28, 28], but"),
                       IOError);
  CHECK_NOTHROW(check_data_shape(t, {1, 14, 14}, "x"));
}

TEST_CASE("JSON files and lines refuse numbers that are not finite, naming the file and the key") {
  TempDir dir;
  const std::string p = (dir.path / "eval.json").string();
  json j = {{"elbo", -90.5}, {"kl_per_dimension", {1.0, std::numeric_limits<double>::infinity()}}};
  CHECK_THROWS_WITH_AS(write_json_file(p, j), doctest::Contains("eval.json: kl_per_dimension[1] is inf"), NonFiniteError);
  CHECK_FALSE(fs::exists(p));
  j = {{"seconds", {{"elbo", std::nan("")}}}};
  CHECK(first_non_finite(j, "") == "seconds.elbo is nan");
  CHECK(first_non_finite(json{{"a", 1}, {"b", "nan"}}, "") == "");
  fs::create_directories(dir.path / "run");
  RunDir r((dir.path / "run").string(), RunDirMode::create);
  CHECK_THROWS_AS(r.append_metrics(json{{"step", 1}, {"loss", -std::numeric_limits<double>::infinity()}}), NonFiniteError);
  CHECK(read_jsonl(r.metrics_path()).empty());
}

}  // namespace file_apps_test_common

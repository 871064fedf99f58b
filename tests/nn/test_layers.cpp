// test_layers.cpp: Module (dotted names, traversal, train/eval, to(f64), buffers, registration
// errors), the initialisers' statistics, each layer's forward against explicit loops or the engine
// op, the PixelCNN masks and their receptive field, and float64 gradient checks through every
// layer's parameters and input.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "tests/test_util.h"

using namespace gv;
using namespace gv::nn;
using ag::Var;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_layers {

namespace {

using gv::test::error_message;


bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<std::string> names_of(const std::vector<NamedVar>& v) {
  std::vector<std::string> r;
  for (const auto& [n, x] : v) r.push_back(n);
  return r;
}

// |got - ref| <= atol + rtol |ref| everywhere; on failure names the worst index.
void check_close(const Tensor& got, const std::vector<double>& ref, double atol, double rtol = 0) {
  std::vector<double> g = got.to_vector<double>();
  REQUIRE(g.size() == ref.size());
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    double excess = std::fabs(g[i] - ref[i]) - (atol + rtol * std::fabs(ref[i]));
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO("worst index ", worst, ": got ", g[worst], ", expected ", ref[worst]);
  CHECK(worst_excess <= 0);
}

Var randn(const Shape& s, uint64_t seed, DType dt = DType::f64, bool requires_grad = true) {
  Generator g(seed);
  return Var(gv::normal(s, g, 0, 1, dt), requires_grad);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}
double std_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

void check_gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Var>& inputs) {
  ag::GradcheckResult r = ag::gradcheck(f, inputs);
  INFO(r.message);
  CHECK(r.ok);
}

// ---- small modules for the Module tests -------------------------------------------------------
struct Encoder : Module {
  std::shared_ptr<Linear> fc1, fc2;
  explicit Encoder(Generator& g) {
    fc1 = register_module("fc1", std::make_shared<Linear>(4, 3, g));
    fc2 = register_module("fc2", std::make_shared<Linear>(3, 2, g, /*bias=*/false));
    register_buffer("scale", Tensor::full({2, 1, 3, 3}, 0.5));  // a float buffer of a child
  }
  const Tensor& scale() const { return buffer("scale"); }
};

struct Model : Module {
  std::shared_ptr<Encoder> enc;
  std::shared_ptr<MaskedConv2d> conv;
  Var scale;
  explicit Model(Generator& g) {
    scale = register_parameter("scale", Tensor::ones({1}));
    enc = register_module("enc", std::make_shared<Encoder>(g));
    conv = register_module("conv", std::make_shared<MaskedConv2d>('B', 1, 2, 3, g, ConvOptions{.padding = 1}));
    register_buffer("steps", Tensor::zeros({1}, DType::i64));
  }
};

// Exposes the protected registration calls.
struct Bag : Module {
  using Module::buffer;
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
};

}  // namespace

// =================================================================================================
// Module
// =================================================================================================
TEST_CASE("Module: nested modules give dotted names, own entries first, then children depth first") {
  Generator g(1);
  Model m(g);
  std::vector<std::string> expected{"scale",         "enc.fc1.weight", "enc.fc1.bias",
                                    "enc.fc2.weight", "conv.weight",    "conv.bias"};
  CHECK(names_of(m.named_parameters()) == expected);
  auto buffers = m.named_buffers();
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[0].first == "steps");
  CHECK(buffers[1].first == "enc.scale");
  // the listed Vars are the layers' own handles, not copies
  CHECK(m.named_parameters()[1].second.impl() == m.enc->fc1->weight().impl());
  CHECK(m.parameters().size() == expected.size());
  CHECK(m.enc->fc1->type_name() == "Linear");
  CHECK(m.type_name() == "Model");
}

TEST_CASE("Module: parameter_count counts scalars, and a tied parameter once") {
  Generator g(2);
  Model m(g);
  // scale 1, fc1 4*3+3, fc2 3*2, conv 2*1*3*3+2
  CHECK(m.parameter_count() == 1 + 15 + 6 + 20);

  Bag tied;
  auto lin = std::make_shared<Linear>(5, 5, g);
  tied.register_module("a", lin);
  tied.register_module("b", lin);  // the same layer twice
  CHECK(names_of(tied.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  CHECK(tied.parameter_count() == 30);
}

TEST_CASE("Module: train and eval reach every module below") {
  Generator g(3);
  Model m(g);
  CHECK(m.is_training());
  m.eval();
  CHECK_FALSE(m.is_training());
  CHECK_FALSE(m.enc->is_training());
  CHECK_FALSE(m.enc->fc2->is_training());
  m.enc->train();
  CHECK(m.enc->fc1->is_training());
  CHECK_FALSE(m.is_training());
  m.train();
  CHECK(m.conv->is_training());
}

TEST_CASE("Module: zero_grad drops every parameter's gradient") {
  Generator g(4);
  Model m(g);
  Var y = ag::sum(m.enc->fc2->forward(m.enc->fc1->forward(randn({2, 4}, 9, DType::f32, false))));
  y.backward();
  CHECK(m.enc->fc1->weight().grad().defined());
  m.zero_grad();
  for (const auto& [name, p] : m.named_parameters()) CHECK_MESSAGE(!p.grad().defined(), name);
}

TEST_CASE("Module: to(f64) converts parameters and float buffers in place, keeping handles") {
  Generator g(5);
  Model m(g);
  std::vector<Var> held = m.parameters();  // e.g. an optimizer's list
  std::vector<double> before = m.enc->fc1->weight().data().to_vector<double>();
  Var y = ag::sum(m.enc->fc1->forward(randn({2, 4}, 1, DType::f32, false)));
  y.backward();

  m.to(DType::f64);
  for (const Var& p : held) {
    CHECK(p.dtype() == DType::f64);
    CHECK(p.requires_grad());
  }
  CHECK(m.enc->fc1->weight().dtype() == DType::f64);
  CHECK(m.enc->fc1->weight().grad().dtype() == DType::f64);  // the gradient follows
  CHECK(m.enc->fc1->weight().data().to_vector<double>() == before);  // float32 values are exact in f64
  CHECK(m.enc->scale().dtype() == DType::f64);
  CHECK(m.conv->mask().dtype() == DType::f64);
  for (const auto& [name, t] : m.named_buffers())
    if (name == "steps") CHECK(t.dtype() == DType::i64);  // integer buffers keep their dtype
  CHECK(m.conv->forward(randn({1, 1, 4, 4}, 2, DType::f64, false)).dtype() == DType::f64);
  CHECK_THROWS_AS(m.to(DType::i64), DTypeError);
}

TEST_CASE("Module: set_buffer by dotted name, checking shape and dtype") {
  Generator g(6);
  Model m(g);
  Tensor ones = Tensor::ones({2, 1, 3, 3});
  m.set_buffer("enc.scale", ones);
  CHECK(m.enc->scale().to_vector<double>() == ones.to_vector<double>());
  ones.fill_(7);  // the buffer holds its own copy
  CHECK(m.enc->scale().to_vector<double>()[0] == 1.0);
  m.set_buffer("steps", Tensor::full({1}, 3, DType::i64));
  CHECK(m.named_buffers()[0].second.item() == 3);

  CHECK(contains(error_message([&] { m.set_buffer("enc.scale", Tensor::ones({3, 3})); }), "scale"));
  CHECK_THROWS_AS(m.set_buffer("enc.scale", Tensor::ones({2, 1, 3, 3}, DType::f64)), ShapeError);
  CHECK(contains(error_message([&] { m.set_buffer("conv.nope", ones); }), "'nope'"));
  CHECK(contains(error_message([&] { m.set_buffer("dec.mask", ones); }), "'dec'"));
}

TEST_CASE("Module: registration rejects empty, dotted and duplicate names, naming module and name") {
  Bag b;
  Generator g(7);
  b.register_parameter("w", Tensor::zeros({2}));
  b.register_buffer("m", Tensor::zeros({2}));
  b.register_module("sub", std::make_shared<ReLU>());
  CHECK(b.buffer("m").numel() == 2);

  std::string dup = error_message([&] { b.register_parameter("w", Tensor::zeros({2})); });
  CHECK(contains(dup, "Bag"));
  CHECK(contains(dup, "'w'"));
  CHECK(contains(dup, "parameter"));
  CHECK(contains(error_message([&] { b.register_parameter("m", Tensor::zeros({2})); }), "buffer"));
  CHECK(contains(error_message([&] { b.register_buffer("sub", Tensor::zeros({2})); }), "submodule"));
  CHECK(contains(error_message([&] { b.register_module("w", std::make_shared<ReLU>()); }), "'w'"));
  CHECK(contains(error_message([&] { b.register_parameter("a.b", Tensor::zeros({2})); }), "'a.b'"));
  CHECK(contains(error_message([&] { b.register_buffer("", Tensor::zeros({2})); }), "empty"));
  CHECK_THROWS_AS(b.register_parameter("i", Tensor::zeros({2}, DType::i64)), DTypeError);
  CHECK_THROWS_AS(b.register_module("none", std::shared_ptr<ReLU>()), ValueError);
  CHECK(contains(error_message([&] { b.buffer("zz"); }), "'zz'"));
}

// =================================================================================================
// Initialisers
// =================================================================================================
TEST_CASE("init: fans of linear, conv and transposed-conv weights; gains") {
  CHECK(init::fans({10, 20}).in == 20);
  CHECK(init::fans({10, 20}).out == 10);
  CHECK(init::fans({8, 3, 5, 4}).in == 3 * 5 * 4);
  CHECK(init::fans({8, 3, 5, 4}).out == 8 * 5 * 4);
  CHECK_THROWS_AS(init::fans({7}), ShapeError);
  CHECK(init::gain(init::Nonlinearity::relu) == doctest::Approx(std::sqrt(2.0)));
  CHECK(init::gain(init::Nonlinearity::leaky_relu, 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)));
  CHECK(init::gain(init::Nonlinearity::tanh) == doctest::Approx(5.0 / 3.0));
  CHECK(init::gain(init::Nonlinearity::linear) == 1.0);
}

TEST_CASE("init: large draws have the stated mean and standard deviation, uniform bounds hold") {
  Generator g(11);
  const Shape s{512, 256};  // fan_in 256, fan_out 512
  const double n = 512.0 * 256.0;
  struct Case {
    const char* name;
    Tensor t;
    double mean, std, bound;  // bound 0: unbounded (normal)
  };
  const double kn = std::sqrt(2.0 / 256), xn = std::sqrt(2.0 / 768);
  std::vector<Case> cases{
      {"kaiming_uniform relu", init::kaiming_uniform(s, g), 0, kn, std::sqrt(3.0) * kn},
      {"kaiming_uniform fan_out", init::kaiming_uniform(s, g, 0, init::Nonlinearity::relu, init::FanMode::fan_out),
       0, std::sqrt(2.0 / 512), std::sqrt(6.0 / 512)},
      {"kaiming_normal relu", init::kaiming_normal(s, g), 0, kn, 0},
      {"kaiming_normal leaky 0.2", init::kaiming_normal(s, g, 0.2), 0, std::sqrt(2.0 / 1.04 / 256), 0},
      {"xavier_uniform", init::xavier_uniform(s, g), 0, xn, std::sqrt(6.0 / 768)},
      {"xavier_normal gain 2", init::xavier_normal(s, g, 2.0), 0, 2 * xn, 0},
      {"uniform(-3, 1)", init::uniform(s, g, -3, 1), -1, 4 / std::sqrt(12.0), 0},
      {"normal(0.5, 2)", init::normal(s, g, 0.5, 2), 0.5, 2, 0},
      {"torch_default", init::torch_default(s, g, 256), 0, 1 / std::sqrt(3.0 * 256), 1 / 16.0},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::vector<double> v = c.t.to_vector<double>();
    CHECK(std::fabs(mean_of(v) - c.mean) < 5 * c.std / std::sqrt(n));  // 5 standard errors
    CHECK(std_of(v) == doctest::Approx(c.std).epsilon(0.01));
    if (c.bound > 0) CHECK(max_abs(v) <= c.bound);
  }
  std::vector<double> u = init::uniform({10000}, g, -3, 1).to_vector<double>();
  CHECK(*std::min_element(u.begin(), u.end()) >= -3);
  CHECK(*std::max_element(u.begin(), u.end()) <= 1);
  CHECK(max_abs(init::zeros({3, 4}).to_vector<double>()) == 0);
}

TEST_CASE("init: PyTorch's default is kaiming_uniform with a = sqrt(5); fills keep shape and dtype") {
  Generator a(3), b(3);
  CHECK(init::kaiming_uniform({40, 30}, a, std::sqrt(5.0)).to_vector<double>() ==
        init::torch_default({40, 30}, b, 30).to_vector<double>());  // same bound, same draws

  Tensor t = Tensor::empty({64, 32, 3, 3}, DType::f64);
  Generator g(4);
  init::kaiming_normal_(t, g);
  CHECK(t.dtype() == DType::f64);
  CHECK(std_of(t.to_vector<double>()) == doctest::Approx(std::sqrt(2.0 / (32 * 9))).epsilon(0.02));
  init::xavier_uniform_(t, g);
  CHECK(max_abs(t.to_vector<double>()) <= std::sqrt(6.0 / (32 * 9 + 64 * 9)));
  init::zeros_(t);
  CHECK(max_abs(t.to_vector<double>()) == 0);
}

TEST_CASE("init: layers start from PyTorch's default bounds; the same seed gives the same weights") {
  Generator g(12);
  Linear lin(100, 400, g);
  CHECK(max_abs(lin.weight().data().to_vector<double>()) <= 0.1);
  CHECK(max_abs(lin.bias().data().to_vector<double>()) <= 0.1);
  CHECK(std_of(lin.weight().data().to_vector<double>()) == doctest::Approx(0.1 / std::sqrt(3.0)).epsilon(0.02));

  Conv2d conv(8, 16, {3, 5}, g);
  CHECK(max_abs(conv.weight().data().to_vector<double>()) <= 1 / std::sqrt(8.0 * 15));
  CHECK(max_abs(conv.weight().data().to_vector<double>()) > 0.9 / std::sqrt(8.0 * 15));

  ConvTranspose2d convt(16, 4, 4, g);  // weight (16, 4, 4, 4): PyTorch's fan_in = 4 * 16 = 64
  CHECK(convt.weight().shape() == Shape{16, 4, 4, 4});
  CHECK(max_abs(convt.weight().data().to_vector<double>()) <= 1 / 8.0);
  CHECK(max_abs(convt.weight().data().to_vector<double>()) > 0.9 / 8.0);

  Generator s1(77), s2(77), s3(78);
  Linear a(6, 5, s1), b(6, 5, s2), c(6, 5, s3);
  CHECK(a.weight().data().to_vector<double>() == b.weight().data().to_vector<double>());
  CHECK(a.bias().data().to_vector<double>() == b.bias().data().to_vector<double>());
  CHECK(a.weight().data().to_vector<double>() != c.weight().data().to_vector<double>());
}

// =================================================================================================
// Layers: forward against references
// =================================================================================================
TEST_CASE("Linear: y = x W^T + b against explicit loops, with leading batch axes, with and without bias") {
  Generator g(21);
  for (bool bias : {true, false}) {
    Linear lin(5, 3, g, bias);
    Var x = randn({2, 4, 5}, 3, DType::f32, false);
    Tensor y = lin(x).data();
    REQUIRE(y.shape() == Shape{2, 4, 3});
    std::vector<double> xv = x.data().to_vector<double>(), w = lin.weight().data().to_vector<double>();
    std::vector<double> b = bias ? lin.bias().data().to_vector<double>() : std::vector<double>(3, 0.0);
    std::vector<double> ref(2 * 4 * 3);
    for (int r = 0; r < 8; ++r)  // rows of the flattened (8, 5) input
      for (int o = 0; o < 3; ++o) {
        double s = b[o];
        for (int i = 0; i < 5; ++i) s += xv[r * 5 + i] * w[o * 5 + i];
        ref[r * 3 + o] = s;
      }
    check_close(y, ref, 1e-5);
  }
  Linear lin(5, 3, g);
  CHECK(lin.bias().shape() == Shape{3});
  std::string err = error_message([&] { lin(randn({2, 4}, 1, DType::f32, false)); });
  CHECK(contains(err, "Linear(5 -> 3)"));
  CHECK(contains(err, "[2, 4]"));
  CHECK_THROWS_AS(lin(randn({2, 5}, 1, DType::f64, false)), DTypeError);
}

namespace {

// y[n][o][i][j] = b[o] + sum_{c,ki,kj} x[n][c][i s - p + ki d][j s - p + kj d] w[o][c][ki][kj]
std::vector<double> naive_conv2d(const Tensor& xt, const Tensor& wt, const Tensor& bt, int64_t s, int64_t p,
                                 int64_t d) {
  const int64_t N = xt.size(0), C = xt.size(1), H = xt.size(2), W = xt.size(3);
  const int64_t O = wt.size(0), kh = wt.size(2), kw = wt.size(3);
  const int64_t Ho = (H + 2 * p - d * (kh - 1) - 1) / s + 1, Wo = (W + 2 * p - d * (kw - 1) - 1) / s + 1;
  std::vector<double> x = xt.to_vector<double>(), w = wt.to_vector<double>(), b = bt.to_vector<double>();
  std::vector<double> y(N * O * Ho * Wo);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double acc = b[o];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ki = 0; ki < kh; ++ki)
              for (int64_t kj = 0; kj < kw; ++kj) {
                int64_t r = i * s - p + ki * d, q = j * s - p + kj * d;
                if (r >= 0 && r < H && q >= 0 && q < W)
                  acc += x[((n * C + c) * H + r) * W + q] * w[((o * C + c) * kh + ki) * kw + kj];
              }
          y[((n * O + o) * Ho + i) * Wo + j] = acc;
        }
  return y;
}

// The scatter form: input pixel (i, j) adds x w[c][o][ki][kj] to output (i s - p + ki d, j s - p + kj d).
std::vector<double> naive_conv_transpose2d(const Tensor& xt, const Tensor& wt, const Tensor& bt, int64_t s,
                                           int64_t p, int64_t d, int64_t op) {
  const int64_t N = xt.size(0), C = xt.size(1), H = xt.size(2), W = xt.size(3);
  const int64_t O = wt.size(1), kh = wt.size(2), kw = wt.size(3);
  const int64_t Ho = (H - 1) * s - 2 * p + d * (kh - 1) + op + 1, Wo = (W - 1) * s - 2 * p + d * (kw - 1) + op + 1;
  std::vector<double> x = xt.to_vector<double>(), w = wt.to_vector<double>(), b = bt.to_vector<double>();
  std::vector<double> y(N * O * Ho * Wo);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t k = 0; k < Ho * Wo; ++k) y[(n * O + o) * Ho * Wo + k] = b[o];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j)
          for (int64_t o = 0; o < O; ++o)
            for (int64_t ki = 0; ki < kh; ++ki)
              for (int64_t kj = 0; kj < kw; ++kj) {
                int64_t r = i * s - p + ki * d, q = j * s - p + kj * d;
                if (r >= 0 && r < Ho && q >= 0 && q < Wo)
                  y[((n * O + o) * Ho + r) * Wo + q] +=
                      x[((n * C + c) * H + i) * W + j] * w[((c * O + o) * kh + ki) * kw + kj];
              }
  return y;
}

}  // namespace

TEST_CASE("Conv2d: matches the engine op with its own weights, and a naive loop") {
  Generator g(31);
  Conv2d conv(3, 4, {3, 2}, g, {.stride = 2, .padding = 1, .dilation = 2});
  CHECK(conv.weight().shape() == Shape{4, 3, 3, 2});
  Var x = randn({2, 3, 9, 8}, 5, DType::f32, false);
  Tensor y = conv(x).data();
  Tensor ref = gv::conv2d(x.data(), conv.weight().data(), conv.bias().data(), Conv2dParams::make(2, 1, 2));
  REQUIRE(y.shape() == ref.shape());
  check_close(y, ref.to_vector<double>(), 0);
  check_close(y, naive_conv2d(x.data(), conv.weight().data(), conv.bias().data(), 2, 1, 2), 1e-5);

  Conv2d nobias(3, 2, 3, g, {.bias = false});
  CHECK_FALSE(nobias.bias().defined());
  CHECK(nobias.named_parameters().size() == 1);
  CHECK(nobias(x).shape() == Shape{2, 2, 7, 6});
  std::string err = error_message([&] { conv(randn({2, 5, 9, 8}, 1, DType::f32, false)); });
  CHECK(contains(err, "Conv2d(3 -> 4)"));
  CHECK(contains(err, "[2, 5, 9, 8]"));
  CHECK_THROWS_AS(Conv2d(3, 4, 3, g, {.output_padding = 1}), ValueError);
  CHECK_THROWS_AS(Conv2d(3, 4, 0, g), ValueError);
}

TEST_CASE("ConvTranspose2d: matches the engine op and a naive scatter loop; output size formula") {
  Generator g(32);
  ConvTranspose2d up(3, 2, 3, g, {.stride = 2, .padding = 1, .output_padding = 1});
  CHECK(up.weight().shape() == Shape{3, 2, 3, 3});  // (in, out, kh, kw)
  Var x = randn({2, 3, 4, 5}, 6, DType::f32, false);
  Tensor y = up(x).data();
  CHECK(y.shape() == Shape{2, 2, 8, 10});  // (H - 1) 2 - 2 + 2 + 1 + 1 = 2 H
  Tensor ref = gv::conv_transpose2d(x.data(), up.weight().data(), up.bias().data(), Conv2dParams::make(2, 1), 1, 1);
  check_close(y, ref.to_vector<double>(), 0);
  check_close(y, naive_conv_transpose2d(x.data(), up.weight().data(), up.bias().data(), 2, 1, 1, 1), 1e-5);

  // The decoder pattern: 4x4, stride 2, padding 1 doubles the size.
  ConvTranspose2d dec(4, 1, 4, g, {.stride = 2, .padding = 1});
  CHECK(dec(randn({1, 4, 7, 7}, 1, DType::f32, false)).shape() == Shape{1, 1, 14, 14});
  CHECK_THROWS_AS(ConvTranspose2d(3, 2, 3, g, {.stride = 2, .output_padding = 2}), ValueError);
}

TEST_CASE("MaskedConv2d: live taps of the masks (B 3x3: 5 of 9, A 7x7: 24 of 49)") {
  auto live = [](const Tensor& m) { return gv::sum(m).item(); };
  CHECK(live(MaskedConv2d::spatial_mask('B', 3, 3)) == 5);
  CHECK(live(MaskedConv2d::spatial_mask('A', 3, 3)) == 4);
  CHECK(live(MaskedConv2d::spatial_mask('A', 7, 7)) == 24);
  CHECK(live(MaskedConv2d::spatial_mask('B', 7, 7)) == 25);
  CHECK(MaskedConv2d::spatial_mask('B', 3, 3).to_vector<double>() == std::vector<double>{1, 1, 1, 1, 1, 0, 0, 0, 0});
  CHECK_THROWS_AS(MaskedConv2d::spatial_mask('C', 3, 3), ValueError);
  CHECK_THROWS_AS(MaskedConv2d::spatial_mask('A', 4, 3), ValueError);

  Generator g(41);
  MaskedConv2d a('A', 2, 3, 7, g, {.padding = 3});
  CHECK(a.mask().shape() == Shape{3, 2, 7, 7});
  CHECK(live(a.mask()) == 24 * 2 * 3);  // every channel pair has the same spatial mask
  // the weight holds the full kernel with its masked taps zero
  CHECK(gv::sum(gv::abs(a.weight().data() * (-a.mask() + 1.0))).item() == 0.0);
  CHECK(gv::sum(gv::abs(a.weight().data() * a.mask())).item() > 0.0);
  CHECK_THROWS_WITH_AS(MaskedConv2d('A', 4, 6, 3, g, {.stride = 2}), doctest::Contains("keeps the image size"),
                       ValueError);
  CHECK_THROWS_WITH_AS(MaskedConv2d('B', 4, 6, 3, g, {.padding = 2}), doctest::Contains("padding (1, 1) (implied)"),
                       ValueError);
  CHECK_THROWS_WITH_AS(MaskedConv2d('A', 4, 6, 1, g), doctest::Contains("no live tap"), ValueError);
}

TEST_CASE("MaskedConv2d: forward is conv2d with weight * mask, without computing a masked tap") {
  // float64: the same products summed in another order (two convolutions), so equal to ~1e-15
  Generator g(42);
  for (auto [type, kh, kw] : {std::tuple{'A', 5, 5}, std::tuple{'B', 3, 3}, std::tuple{'A', 3, 7},
                              std::tuple{'B', 1, 5}, std::tuple{'B', 5, 1}, std::tuple{'A', 7, 7}}) {
    CAPTURE(type);
    CAPTURE(kh);
    CAPTURE(kw);
    MaskedConv2d conv(type, 2, 3, Size2(kh, kw), g, {.dtype = DType::f64});
    Var x = randn({2, 2, 6, 7}, 7, DType::f64, false);
    Var y = conv(x);
    // the reference multiplies a perturbed weight by the mask: garbage in the masked taps must not matter
    Tensor w = conv.weight().data() + 5.0 * (-conv.mask() + 1.0);
    Tensor ref = gv::conv2d(x.data(), w * conv.mask(), conv.bias().data(), {1, 1, kh / 2, kw / 2, 1, 1});
    REQUIRE(y.shape() == ref.shape());
    check_close(y.data(), ref.to_vector<double>(), 1e-13);
    ag::sum(ag::square(y)).backward();
    std::vector<double> gw = conv.weight().grad().to_vector<double>(), m = conv.mask().to_vector<double>();
    int masked_nonzero = 0, live_nonzero = 0, live = 0;
    for (size_t i = 0; i < gw.size(); ++i) {
      if (m[i] == 0) masked_nonzero += gw[i] != 0.0;
      else live_nonzero += gw[i] != 0.0, ++live;
    }
    CHECK(masked_nonzero == 0);  // exactly: the masked taps are never read
    CHECK(live_nonzero == live);
  }
}

namespace {

// Raster index of pixel (i, j) in a W-wide image.
int64_t raster(int64_t i, int64_t j, int64_t W) { return i * W + j; }

// Perturbs every input (pixel, channel) of an (1, C, H, W) image and records, for each output
// (pixel, channel), whether it changed. changed[(pin*C + c) * (H*W*O) + pout*O + o].
std::vector<bool> dependence(Layer& net, int64_t C, int64_t O, int64_t H, int64_t W) {
  ag::NoGradGuard ng;
  Var x = randn({1, C, H, W}, 99, DType::f64, false);
  std::vector<double> y0 = net(x).data().to_vector<double>();
  std::vector<bool> changed(C * H * W * O * H * W);
  for (int64_t pin = 0; pin < H * W; ++pin)
    for (int64_t c = 0; c < C; ++c) {
      Tensor xp = x.data().clone();
      xp.data<double>()[c * H * W + pin] += 1.0;
      std::vector<double> y = net(Var(xp)).data().to_vector<double>();
      for (int64_t o = 0; o < O; ++o)
        for (int64_t pout = 0; pout < H * W; ++pout)
          changed[(pin * C + c) * (H * W * O) + pout * O + o] = y[o * H * W + pout] != y0[o * H * W + pout];
    }
  return changed;
}

}  // namespace

TEST_CASE("PixelCNN receptive field: an output pixel never depends on itself (A) or later pixels") {
  Generator g(43);
  const int64_t H = 6, W = 5;
  // masked 7x7 (type `first`), tanh, masked 3x3 B, leaky relu, masked 3x3 B; sizes kept by padding
  auto make_stack = [&](char first, int64_t C, int64_t hidden, int64_t O) {
    const ConvOptions f64{.dtype = DType::f64};
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<MaskedConv2d>(first, C, hidden, 7, g, f64));
    net->add(std::make_shared<Tanh>());
    net->add(std::make_shared<MaskedConv2d>('B', hidden, hidden, 3, g, f64));
    net->add(std::make_shared<LeakyReLU>(0.1));
    net->add(std::make_shared<MaskedConv2d>('B', hidden, O, 3, g, f64));
    return net;
  };

  SUBCASE("one channel, stack A-B-B: outputs at and before a pixel do not see it; later ones do") {
    auto net = make_stack('A', 1, 4, 1);
    std::vector<bool> ch = dependence(*net, 1, 1, H, W);
    int before_or_at = 0, later = 0;
    for (int64_t pin = 0; pin < H * W; ++pin)
      for (int64_t pout = 0; pout < H * W; ++pout) {
        bool c = ch[pin * H * W + pout];
        if (pout <= pin) before_or_at += c;
        else later += c;
      }
    CHECK(before_or_at == 0);
    CHECK(later > 0);
    CHECK(ch[raster(0, 0, W) * H * W + raster(0, 1, W)]);  // the next pixel sees the first
    CHECK(ch[raster(2, 3, W) * H * W + raster(3, 2, W)]);  // the row below, to the left, too
  }
  SUBCASE("one channel, stack B-B-B: outputs before a pixel do not see it; the pixel itself does") {
    auto net = make_stack('B', 1, 4, 1);
    std::vector<bool> ch = dependence(*net, 1, 1, H, W);
    int before = 0, itself = 0;
    for (int64_t pin = 0; pin < H * W; ++pin)
      for (int64_t pout = 0; pout <= pin; ++pout) (pout < pin ? before : itself) += ch[pin * H * W + pout];
    CHECK(before == 0);
    CHECK(itself == H * W);
  }
}

TEST_CASE("Sequential: children named 0, 1, ...; forward chains the layers") {
  Generator g(51);
  auto fc1 = std::make_shared<Linear>(4, 8, g);
  auto fc2 = std::make_shared<Linear>(8, 2, g);
  Sequential seq{fc1, std::make_shared<ReLU>()};
  seq.push_back(fc2);
  CHECK(seq.size() == 3);
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  Var x = randn({5, 4}, 8, DType::f32, false);
  check_close(seq(x).data(), fc2->forward(ag::relu(fc1->forward(x))).data().to_vector<double>(), 0);
  CHECK(seq[1]->type_name() == "ReLU");
  CHECK_THROWS_AS(seq[3], IndexError);
  Sequential empty;
  CHECK(empty(x).data().to_vector<double>() == x.data().to_vector<double>());
}

TEST_CASE("activations, GatedActivation, Flatten and Reshape against their formulas") {
  Var x = randn({2, 4, 3}, 61, DType::f64, false);
  std::vector<double> v = x.data().to_vector<double>();
  auto apply = [&](double (*f)(double)) {
    std::vector<double> r(v);
    for (double& e : r) e = f(e);
    return r;
  };
  check_close(ReLU()(x).data(), apply([](double t) { return t > 0 ? t : 0.0; }), 0);
  check_close(LeakyReLU(0.2)(x).data(), apply([](double t) { return t > 0 ? t : 0.2 * t; }), 1e-15);
  check_close(Tanh()(x).data(), apply([](double t) { return std::tanh(t); }), 1e-14);
  check_close(Sigmoid()(x).data(), apply([](double t) { return 1 / (1 + std::exp(-t)); }), 1e-14);
  check_close(Softplus()(x).data(), apply([](double t) { return std::log1p(std::exp(t)); }), 1e-14);

  // gate: x (2, 4, 3) -> (2, 2, 3), out[n][c][k] = tanh(x[n][c][k]) sigmoid(x[n][c+2][k])
  Tensor gated = GatedActivation()(x).data();
  REQUIRE(gated.shape() == Shape{2, 2, 3});
  std::vector<double> ref;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 3; ++k)
        ref.push_back(std::tanh(v[(n * 4 + c) * 3 + k]) / (1 + std::exp(-v[(n * 4 + c + 2) * 3 + k])));
  check_close(gated, ref, 1e-14);
  CHECK_THROWS_AS(GatedActivation()(randn({2, 3}, 1, DType::f64, false)), ShapeError);

  Var img = randn({3, 2, 4, 5}, 62, DType::f32, false);
  CHECK(Flatten()(img).shape() == Shape{3, 40});
  CHECK(Flatten(2)(img).shape() == Shape{3, 2, 20});
  CHECK(Flatten()(img).data().to_vector<double>() == img.data().to_vector<double>());
  CHECK(Reshape({128, 7, 7})(randn({2, 6272}, 63, DType::f32, false)).shape() == Shape{2, 128, 7, 7});
  CHECK(Reshape({-1, 4})(img).shape() == Shape{3, 10, 4});
  CHECK(Reshape({2, 4, 5})(Flatten()(img)).data().to_vector<double>() == img.data().to_vector<double>());
}

// =================================================================================================
// Gradient checks (float64): the layer's own parameter Vars are gradcheck inputs, so perturbing
// them in place perturbs the layer.
// =================================================================================================
TEST_CASE("gradcheck: Linear, after to(f64), through input, weight and bias") {
  Generator g(71);
  Linear lin(4, 3, g);
  lin.to(DType::f64);
  Var x = randn({2, 3, 4}, 1);
  check_gradcheck([&](const std::vector<Var>& in) { return lin(in[0]); }, {x, lin.weight(), lin.bias()});
}

TEST_CASE("gradcheck: Conv2d with stride, padding, dilation and a non-square kernel") {
  Generator g(72);
  Conv2d conv(2, 3, {3, 2}, g, {.stride = {2, 1}, .padding = 1, .dilation = {1, 2}, .dtype = DType::f64});
  Var x = randn({2, 2, 6, 5}, 2);
  check_gradcheck([&](const std::vector<Var>& in) { return conv(in[0]); }, {x, conv.weight(), conv.bias()});
}

TEST_CASE("gradcheck: ConvTranspose2d with output_padding") {
  Generator g(73);
  ConvTranspose2d up(2, 3, 3, g, {.stride = 2, .padding = 1, .output_padding = 1});
  up.to(DType::f64);
  Var x = randn({2, 2, 3, 4}, 3);
  check_gradcheck([&](const std::vector<Var>& in) { return up(in[0]); }, {x, up.weight(), up.bias()});
}

TEST_CASE("gradcheck: MaskedConv2d types A and B, square and rectangular kernels") {
  Generator g(74);
  for (auto [type, kh, kw] : {std::tuple{'A', 3, 3}, std::tuple{'B', 3, 3}, std::tuple{'A', 3, 5}, std::tuple{'B', 1, 3}}) {
    INFO("type ", type, ", kernel ", kh, "x", kw);
    MaskedConv2d conv(type, 3, 3, Size2(kh, kw), g, {.dtype = DType::f64});
    Var x = randn({2, 3, 4, 4}, 4);
    check_gradcheck([&](const std::vector<Var>& in) { return conv(in[0]); }, {x, conv.weight(), conv.bias()});
  }
}

TEST_CASE("gradcheck: a Sequential of every layer kind, through all its parameters and its input") {
  Generator g(75);
  Sequential net{
      std::make_shared<Conv2d>(2, 4, 3, g, ConvOptions{.padding = 1}),              // (2, 2, 5, 5) -> (2, 4, 5, 5)
      std::make_shared<GatedActivation>(),                                           // -> (2, 2, 5, 5)
      std::make_shared<MaskedConv2d>('B', 2, 2, 3, g, ConvOptions{.padding = 1}),   // -> (2, 2, 5, 5)
      std::make_shared<Softplus>(),
      std::make_shared<Flatten>(),                                                   // -> (2, 50)
      std::make_shared<Linear>(50, 18, g),                                           // -> (2, 18)
      std::make_shared<LeakyReLU>(0.1),
      std::make_shared<Reshape>(Shape{2, 3, 3}),                                     // -> (2, 2, 3, 3)
      std::make_shared<ConvTranspose2d>(2, 1, 3, g, ConvOptions{.stride = 2}),      // -> (2, 1, 7, 7)
      std::make_shared<Sigmoid>(),
  };
  net.to(DType::f64);
  std::vector<Var> inputs{randn({2, 2, 5, 5}, 5)};
  for (const Var& p : net.parameters()) inputs.push_back(p);
  CHECK(inputs.size() == 1 + 8);
  check_gradcheck([&](const std::vector<Var>& in) { return net(in[0]); }, inputs);
}

TEST_CASE("gradcheck: activations away from their kinks") {
  Var x = randn({3, 4}, 6);
  for (double* p = x.data().data<double>(); p != x.data().data<double>() + 12; ++p)
    *p = (*p < 0 ? -1 : 1) * (0.1 + std::fabs(*p));  // |x| >= 0.1
  std::vector<std::shared_ptr<Layer>> acts{std::make_shared<ReLU>(), std::make_shared<LeakyReLU>(0.3),
                                           std::make_shared<Tanh>(), std::make_shared<Sigmoid>(),
                                           std::make_shared<Softplus>()};
  for (auto& a : acts) {
    INFO(a->type_name());
    check_gradcheck([&](const std::vector<Var>& in) { return (*a)(in[0]); }, {x});
  }
}

}  // namespace file_nn_test_layers

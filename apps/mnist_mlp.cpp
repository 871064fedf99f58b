// mnist_mlp.cpp: the foundation's end-to-end job. A two-layer network (784 -> hidden -> 10, ReLU)
// trained on MNIST with softmax cross-entropy and SGD with momentum, built only from genvae's
// engine and autograd. Prints the training loss falling, with time left, and the test accuracy.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "apps/common/flags.h"
#include "apps/progress.h"
#include "autograd/ops.h"
#include "engine/random.h"
#include "engine/runtime.h"
#include "nn/data/idx.h"
#include "nn/train_step.h"

using namespace gv;
using gv::app::at_least, gv::app::int_range, gv::app::number_above, gv::app::number_range, gv::app::uint64_any;
using ag::Var;

namespace {

struct Mlp {
  Var w1, b1, w2, b2;  // w1 (784, H), b1 (H), w2 (H, 10), b2 (10)
  std::vector<nn::NamedVar> named_parameters() const { return {{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}}; }

  Mlp(int64_t in, int64_t hidden, int64_t out, Generator& g) {
    // Kaiming-normal for the ReLU layer, Xavier-normal for the output layer
    w1 = Var(normal({in, hidden}, g, 0, std::sqrt(2.0 / double(in))), true);
    b1 = Var(Tensor::zeros({hidden}), true);
    w2 = Var(normal({hidden, out}, g, 0, std::sqrt(2.0 / double(hidden + out))), true);
    b2 = Var(Tensor::zeros({out}), true);
  }
  // the weights on `device` (before the optimizer is made)
  void to(Device device) {
    for (Var* v : {&w1, &b1, &w2, &b2}) *v = Var(v->data().to(device), true);
  }
  Device device() const { return w1.data().device(); }
  // x (B, 784) -> logits (B, 10)
  Var forward(const Var& x) const { return ag::matmul(ag::relu(ag::matmul(x, w1) + b1), w2) + b2; }
};

// Mean cross-entropy of logits (B, K) against int64 labels (B): -mean_b log softmax(logits)[b, y_b]
Var cross_entropy(const Var& logits, const Tensor& labels) {
  Var logp = ag::log_softmax(logits, 1);
  return -ag::mean(ag::gather(logp, 1, labels.unsqueeze(1)));
}

// Test accuracy in batches, without recording a graph.
double accuracy(const Mlp& net, const data::MnistSplit& test) {
  ag::NoGradGuard ng;
  int64_t n = test.labels.size(0), correct = 0;
  for (int64_t s = 0; s < n; s += 1000) {
    int64_t e = std::min(n, s + 1000);
    Tensor x = test.images.slice(0, s, e).reshape({e - s, -1}).to(net.device());
    Tensor pred = argmax(net.forward(Var(x)).data(), 1).to(Device::cpu());
    correct += (int64_t)sum(eq(pred, test.labels.slice(0, s, e))).item();
  }
  return double(correct) / double(n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"genvae-mnist-mlp: train a two-layer network on MNIST with genvae's engine and autograd"};
  std::string data_dir = data::default_mnist_dir();
  int64_t epochs = 3, batch = 100, hidden = 256, threads = 2;
  int64_t limit = -1;
  std::string device = "cpu";
  double lr = 0.05, momentum = 0.9;
  uint64_t seed = 1;
  app.add_option("--data", data_dir, "folder with the MNIST IDX files (.gz or plain); or set GENVAE_MNIST_DIR")
      ->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training set")->capture_default_str()->check(int_range(1, 1000));
  app.add_option("--batch", batch, "mini-batch size (every epoch ends with a short batch when N is not a multiple of it)")->capture_default_str()->check(int_range(1, 60000));
  app.add_option("--hidden", hidden, "hidden units")->capture_default_str()->check(int_range(1, 100000));
  app.add_option("--lr", lr, "SGD learning rate")->capture_default_str()->check(number_above(0, false));
  app.add_option("--momentum", momentum, "SGD momentum")->capture_default_str()->check(number_range(0.0, 0.999));
  app.add_option("--seed", seed, "seed of the Philox generator (weights and data order)")->check(uint64_any())->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (OpenMP and OpenBLAS)")->capture_default_str()->check(int_range(1, 256));
  app.add_option("--limit", limit, "use only the first N training images (-1: all)")->capture_default_str()->check(at_least(-1));
  app::add_device_flag(app, device);
  CLI11_PARSE(app, argc, argv);

  try {
    set_num_threads(int(threads));
    auto train = data::load_mnist(data_dir, true, limit);
    auto test = data::load_mnist(data_dir, false);
    // the network's input is 784 pixels: say so by file before a shape error deep in the first step
    for (const auto* split : {&train, &test})
      GV_CHECK(split->images.size(2) == 28 && split->images.size(3) == 28, IOError,
               "{} holds images of {}x{} pixels; genvae-mnist-mlp expects 28x28 (MNIST's size)", split->images_path,
               split->images.size(2), split->images.size(3));
    const int64_t n = train.labels.size(0), steps = (n + batch - 1) / batch;
    fmt::print("MNIST from {}: {} training, {} test images; MLP 784-{}-10, batch {}, SGD lr {} momentum {}, {} threads\n",
               data_dir, n, test.labels.size(0), hidden, batch, lr, momentum, threads);

    Generator gen(seed);
    Mlp net(784, hidden, 10, gen);
    net.to(app::checked_device(device));
    nn::SGD opt(net.named_parameters(), lr, momentum);  // v = momentum v + grad; p -= lr v
    Tensor flat = train.images.reshape({n, -1});

    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      Tensor order = randperm(n, gen);
      const int64_t* ord = order.data<int64_t>();
      app::Progress prog(fmt::format("epoch {}/{}", epoch, epochs), steps);
      double loss_sum = 0, first_loss = 0;
      for (int64_t s = 0; s < steps; ++s) {
        int64_t b0 = s * batch, b1 = std::min(n, b0 + batch);
        Tensor idx = Tensor::from_vector(std::vector<int64_t>(ord + b0, ord + b1), {b1 - b0});
        Tensor x = gather(flat, 0, idx.unsqueeze(1).expand({b1 - b0, 784}).contiguous());
        Tensor y = gather(train.labels, 0, idx).to(net.device());
        x = x.to(net.device());
        double l = 0;
        try {
          l = nn::train_step(opt, [&] { return cross_entropy(net.forward(Var(x)), y); }).loss;
        } catch (const NonFiniteError& e) {
          GV_THROW(NonFiniteError, "training diverged: {} at epoch {} step {}", e.what(), epoch, s);
        }
        if (s == 0) first_loss = l;
        loss_sum += l;
        prog.update(s + 1, fmt::format("loss {:.4f}", l));
      }
      fmt::print("epoch {}: mean training loss {:.4f} (first batch {:.4f}), test accuracy {:.2f}%, {:.1f}s\n", epoch,
                 loss_sum / double(steps), first_loss, 100 * accuracy(net, test), prog.seconds());
      std::fflush(stdout);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "genvae-mnist-mlp: %s\n", e.what());
    return 1;
  }
  return 0;
}

// classifier.cpp: genvae-classifier, the digit classifier that scores samples (apps/common/
// classifier.h). Trains the small convolutional network on MNIST binarized afresh for every batch
// (dynamic binarization: the samples it will score are binary), with Adam and a learning rate that
// decays exponentially to --lr-final over the run, and reports its test accuracy on the MNIST test
// images (grey, as MNIST accuracies are usually given: the 99% target) and on one fixed
// binarization of them (stricter: binarizing loses strokes). Writes OUT/classifier.safetensors
// (atomically) and OUT/classifier.json.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/classifier.h"
#include "apps/common/flags.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "nn/checkpoint.h"
#include "nn/data/idx.h"
#include "nn/data/loader.h"
#include "nn/optim.h"
#include "nn/train_step.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

namespace {

struct Options {
  std::string data_dir = data::default_mnist_dir(), out = "runs/classifier";
  int64_t epochs = 8, batch = 100, limit = -1, test_limit = -1, threads = 0;
  std::string device = "cpu";
  double lr = 1e-3, lr_final = 1e-4;
  uint64_t seed = 1;
  bool force = false;
};

// mean over the batch of -log softmax(logits)[label]
ag::Var cross_entropy(const ag::Var& logits, const Tensor& labels) {
  return -ag::mean(ag::gather(ag::log_softmax(logits, 1), 1, labels.to(logits.data().device()).unsqueeze(1)));
}

double accuracy(DigitClassifier& c, const Tensor& images, const Tensor& labels) {
  const Tensor pred = argmax(c.probabilities(images), 1);
  return sum(eq(pred, labels)).item() / double(labels.size(0));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"genvae-classifier: train the digit classifier that scores samples (genvae-sample --classifier) on "
               "binarized MNIST; writes OUT/classifier.safetensors and OUT/classifier.json"};
  app.add_option("--data-dir", o.data_dir, "folder with the MNIST IDX files (.gz or plain); or set GENVAE_MNIST_DIR")
      ->capture_default_str();
  app.add_option("--out", o.out, "the folder to write")->capture_default_str();
  app.add_flag("--force", o.force, "replace a classifier already in --out");
  app.add_option("--epochs", o.epochs, "passes over the training set")->check(int_range(1, 1000))->capture_default_str();
  app.add_option("--batch", o.batch, "mini-batch size")->check(int_range(1, 60000))->capture_default_str();
  app.add_option("--lr", o.lr, "Adam's learning rate at the start")->check(number_above(0, false))->capture_default_str();
  app.add_option("--lr-final", o.lr_final, "the learning rate at the end (exponential decay from --lr)")
      ->check(number_above(0, false))->capture_default_str();
  app.add_option("--limit", o.limit, "use only N training images (-1: all)")->check(at_least(-1))->capture_default_str();
  app.add_option("--test-limit", o.test_limit, "use only N test images (-1: all)")->check(at_least(-1))->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the weights, the data order and the binarization")
      ->check(uint64_any())->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: every core)")->check(int_range(0, 1024))->capture_default_str();
  add_device_flag(app, o.device);
  CLI11_PARSE(app, argc, argv);

  try {
    const fs::path file = fs::path(o.out) / "classifier.safetensors";
    GV_CHECK(o.force || !fs::exists(file), IOError, "{} exists; use --force to replace it, or another --out",
             file.string());
    if (o.threads > 0) set_num_threads(int(o.threads));
    const data::MnistSplit train = data::load_mnist(o.data_dir, true, o.limit), test = data::load_mnist(o.data_dir, false, o.test_limit);
    for (const auto* s : {&train, &test})
      GV_CHECK(s->images.size(2) == 28 && s->images.size(3) == 28, IOError,
               "{} holds images of {}x{} pixels; the classifier expects 28x28 (MNIST's size)", s->images_path,
               s->images.size(2), s->images.size(3));
    Generator g(o.seed);
    DigitClassifier net(g);
    net.to(checked_device(o.device));  // before the optimizer: its state goes where the weights are
    nn::Adam opt(net.named_parameters(), o.lr);
    data::BatchLoader loader({train.images, train.labels}, o.batch, true, o.seed, false);
    Generator binarize(o.seed + 1);
    const Tensor test_binary = data::binarize_dynamic(test.images, binarize);  // one fixed draw
    const int64_t steps = (train.images.size(0) + o.batch - 1) / o.batch;
    fmt::print("genvae-classifier: {} training and {} test images from {}; {} threads ({})\n", train.images.size(0),
               test.images.size(0), o.data_dir, num_threads(), cpu_brand());
    const auto t0 = std::chrono::steady_clock::now();
    double acc_binary = 0;
    for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
      Progress progress(fmt::format("epoch {}/{}", epoch, o.epochs), steps);
      data::Batch b;
      int64_t s = 0;
      double loss_sum = 0;
      while (loader.next(b)) {
        const double done = double((epoch - 1) * steps + s) / double(o.epochs * steps);
        opt.set_lr(o.lr * std::pow(o.lr_final / o.lr, done));
        const Tensor x = data::binarize_dynamic(b.images, binarize).to(net.device());
        const double l = nn::train_step(opt, [&] { return cross_entropy(net.forward(ag::Var(x)), b.labels); }).loss;
        loss_sum += l;
        progress.update(++s, fmt::format("loss {:.4f}", l));
      }
      acc_binary = accuracy(net, test_binary, test.labels);
      fmt::print("epoch {}: mean training loss {:.4f}, test accuracy {:.2f}% (binarized)\n", epoch,
                 loss_sum / double(std::max<int64_t>(s, 1)), 100 * acc_binary);
      std::fflush(stdout);
    }
    const double acc_grey = accuracy(net, test.images, test.labels);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // what the classifier says about real (binarized) test digits: the reference for the samples' figures
    const SampleQuality real = score_samples(net, test_binary);
    fs::create_directories(o.out);
    nn::TrainState state;
    state.epoch = o.epochs;
    state.extra["test_accuracy_binary"] = fmt::format("{:.6f}", acc_binary);
    nn::save_checkpoint(file.string(), net, nullptr, state);
    json j{{"test_accuracy_binary", acc_binary},
           {"test_accuracy_grey", acc_grey},
           {"target_99_met", acc_grey >= 0.99},
           {"test_images", test.images.size(0)},
           {"real_test_digits", to_json(real)},
           {"epochs", o.epochs},
           {"batch", o.batch},
           {"lr", o.lr},
           {"lr_final", o.lr_final},
           {"seed", o.seed},
           {"seconds", seconds},
           {"threads", num_threads()},
           {"cpu", cpu_brand()}};
    write_json_file((fs::path(o.out) / "classifier.json").string(), j);
    fmt::print("test accuracy {:.2f}% on the MNIST test images ({}), {:.2f}% on one binarization of them; real "
               "binarized test digits: mean confidence {:.4f}, label entropy {:.4f} of at most {:.4f}; {:.0f} s\nwrote {} "
               "and classifier.json\n",
               100 * acc_grey, acc_grey >= 0.99 ? "the 99% target met" : "BELOW the 99% target", 100 * acc_binary,
               real.mean_confidence, real.label_entropy, std::log(10.0), seconds, file.string());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-classifier: %s\n", e.what());
    return 1;
  }
  return 0;
}

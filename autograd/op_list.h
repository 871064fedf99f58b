// op_list.h: every differentiable op of autograd/ops.h, by name. The gradient-check registry in
// tests/autograd/ must hold at least one case for each name here, and a test fails when one is
// missing: a new op cannot be added without its float64 gradient check.
#pragma once

#define GV_DIFFERENTIABLE_OPS(X)                                                                  \
  X(neg) X(exp) X(log) X(log1p) X(sqrt) X(square) X(abs) X(tanh) X(sigmoid) X(softplus) X(relu) X(elu)  \
  X(leaky_relu) X(clamp)                                                                          \
  X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(where)                               \
  X(sum) X(mean) X(max) X(logsumexp) X(softmax) X(log_softmax)                                    \
  X(matmul) X(linear) X(conv2d) X(masked_conv2d) X(conv_transpose2d)                                        \
  X(reshape) X(permute) X(transpose) X(slice) X(select) X(expand) X(unsqueeze) X(squeeze)         \
  X(flatten) X(concat) X(split) X(chunk) X(gather) X(contiguous) X(gate)

"""Multinomial logistic regression on scikit-learn's handwritten digits.

Run it with `python samples/digits_logistic_regression.py [--steps N]`.

The 8x8 digit images ship with scikit-learn, so nothing is downloaded. A
quarter of the 1797 images is held out (fixed seed), the features are
standardized with statistics of the training part only, and a linear softmax
classifier is trained by full-batch gradient descent. Every gradient comes
from `pullback.gradient` of the loss below. The program prints the loss as it
trains and the accuracy on the held-out images at the end.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import pullback

# Weight of the L2 penalty on the weights (the bias is not penalized).
L2_PENALTY = 1e-3
SEED = 0


def loss(weights, bias, features, one_hot_labels):
    """Return the mean softmax cross-entropy plus an L2 penalty on `weights`.

    Subtracting each row's max before `exp` keeps the log-softmax finite for
    large logits and does not change its value.
    """
    logits = features @ weights + bias
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_normalizer = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    log_probabilities = shifted - log_normalizer
    cross_entropy = -np.mean(np.sum(one_hot_labels * log_probabilities, axis=1))
    return cross_entropy + L2_PENALTY * np.sum(weights * weights)


def load_split():
    """Return standardized training and held-out features with their labels."""
    digits = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        digits.data,
        digits.target,
        test_size=0.25,
        random_state=SEED,
        stratify=digits.target,
    )
    scaler = StandardScaler().fit(train_x)
    return scaler.transform(train_x), scaler.transform(test_x), train_y, test_y


def train(features, labels, steps, learning_rate, report_every):
    """Fit weights and bias by gradient descent, printing the loss as it goes."""
    class_count = int(labels.max()) + 1
    one_hot_labels = np.eye(class_count)[labels]
    weights = np.zeros((features.shape[1], class_count))
    bias = np.zeros(class_count)

    loss_and_gradients = pullback.value_and_gradient(loss, wrt=("weights", "bias"))
    for step in range(steps):
        value, (weights_bar, bias_bar) = loss_and_gradients(
            weights, bias, features, one_hot_labels
        )
        if step % report_every == 0:
            print(f"step {step:4d}  loss {value:.4f}")
        weights = weights - learning_rate * weights_bar
        bias = bias - learning_rate * bias_bar

    final_loss = loss(weights, bias, features, one_hot_labels)
    print(f"step {steps:4d}  loss {final_loss:.4f}  (final)")
    return weights, bias


def accuracy(weights, bias, features, labels):
    predictions = np.argmax(features @ weights + bias, axis=1)
    return float(np.mean(predictions == labels))


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=300,
        help="number of full-batch gradient-descent steps (default: 300)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=0.5,
        help="gradient-descent step size (default: 0.5)",
    )
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    return args


def main():
    args = parse_arguments()
    train_x, test_x, train_y, test_y = load_split()
    print(
        f"digits: {len(train_x)} training and {len(test_x)} held-out images, "
        f"{train_x.shape[1]} standardized pixel features, 10 classes"
    )
    print(
        f"training a softmax classifier: {args.steps} gradient-descent steps, "
        f"learning rate {args.learning_rate}, L2 penalty {L2_PENALTY}"
    )

    report_every = max(1, args.steps // 10)
    weights, bias = train(
        train_x, train_y, args.steps, args.learning_rate, report_every
    )

    print(f"training accuracy: {accuracy(weights, bias, train_x, train_y):.4f}")
    held_out = accuracy(weights, bias, test_x, test_y)
    correct = round(held_out * len(test_y))
    print(f"held-out accuracy: {held_out:.4f} ({correct} of {len(test_y)} images)")


if __name__ == "__main__":
    main()

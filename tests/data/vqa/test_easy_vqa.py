import torch

from mumo.data.vqa.easy_vqa import question_type
from mumo.data.vqa.split import image_batches


def test_splits_have_the_documented_sizes_and_shapes(easy_vqa_data):
    d = easy_vqa_data
    assert d.train.num_images + d.val.num_images == 4000
    assert d.train.num_questions + d.val.num_questions == 38_575
    assert d.test.num_images == 1000 and d.test.num_questions == 9_673
    assert d.val.num_images == 400
    assert d.train.images.shape[1:] == (3, 64, 64) and d.train.images.dtype == torch.uint8
    assert d.train.tokens.shape == (d.train.num_questions, 14)
    assert d.train.targets.shape == (d.train.num_questions, 13)
    assert torch.equal(d.train.targets.sum(1), torch.ones(d.train.num_questions))
    assert len(d.answers) == 13


def test_val_is_disjoint_from_train_by_image(easy_vqa_data):
    d = easy_vqa_data
    assert not set(d.train.image_ids) & set(d.val.image_ids)
    # every question of a val image is in val
    assert d.val.image_index.max() < d.val.num_images


def test_batch_groups_questions_by_image(easy_vqa_data):
    split = easy_vqa_data.train
    idx = torch.tensor([5, 0, 17])
    batch = split.batch(idx)
    assert batch.images.shape == (3, 3, 64, 64)
    assert batch.images.max() <= 1.0
    expected = sum(int((split.image_index == i).sum()) for i in idx)
    assert batch.tokens.shape[0] == expected
    # each question's local image index points back to its real image
    assert torch.equal(idx[batch.image_index], split.image_index[batch.question_ids])


def test_question_types():
    assert question_type("yes") == "yes/no"
    assert question_type("circle") == "shape"
    assert question_type("teal") == "color"


def test_image_batches_are_seeded_and_shard_across_processes():
    a = image_batches(100, 8, shuffle=True, seed=1, epoch=3)
    b = image_batches(100, 8, shuffle=True, seed=1, epoch=3)
    c = image_batches(100, 8, shuffle=True, seed=1, epoch=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(torch.cat(a), torch.cat(c))
    assert sorted(torch.cat(a).tolist()) == list(range(100))
    r0 = image_batches(100, 8, shuffle=True, seed=1, epoch=3, rank=0, world_size=2)
    r1 = image_batches(100, 8, shuffle=True, seed=1, epoch=3, rank=1, world_size=2)
    assert len(r0) == len(r1)
    e0 = image_batches(100, 8, shuffle=False, rank=0, world_size=2, pad=False)
    e1 = image_batches(100, 8, shuffle=False, rank=1, world_size=2, pad=False)
    assert sorted(torch.cat(e0 + e1).tolist()) == list(range(100))


def test_first_images_keeps_the_first_images_and_their_questions(easy_vqa_data):
    import torch

    train = easy_vqa_data.train
    head = train.first_images(3)
    assert head.name == f"{train.name}[:3]" and head.num_images == 3
    assert torch.equal(head.images, train.images[:3])
    assert head.num_questions == int((train.image_index < 3).sum())
    assert train.first_images(10**9).num_images == train.num_images  # clamped, not an error

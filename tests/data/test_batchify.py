import collections
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.utils.data import DataLoader

from toolkit.data import ArrayDataset, Dict, List, NamedTuple, Pad, SimpleDataset, Stack, Tuple

Sample = collections.namedtuple("Sample", ["data", "label"])


# ----------------------------------------------------------------------------- Stack
def test_stack_inputs_and_dtypes():
    assert torch.equal(Stack()([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 4]]))
    assert Stack()([1, 2, 3]).dtype == torch.int64
    assert Stack()([1.5, 2.0]).dtype == torch.float32
    out = Stack()([np.ones((2, 3), np.float64), np.zeros((2, 3), np.float64)])
    assert out.shape == (2, 2, 3) and out.dtype == torch.float64
    assert Stack()([torch.ones(2, dtype=torch.bfloat16)] * 3).dtype == torch.bfloat16
    assert Stack(dtype="float16")([[1, 2], [3, 4]]).dtype == torch.float16
    assert Stack(dtype=np.int32)([np.float32(1), np.float32(2)]).dtype == torch.int32
    # python ints join a float32 batch (torch's weak-scalar rule); floats do not join int batches.
    assert Stack()([np.ones(2, np.float32), [1, 2]]).dtype == torch.float32
    with pytest.raises(TypeError, match="sample 1 holds python"):
        Stack()([np.ones(2, np.int32), [1.5, 2.5]])


def test_stack_errors():
    with pytest.raises(ValueError, match="empty list of samples"):
        Stack()([])
    with pytest.raises(ValueError, match="mismatched rank.*sample 1"):
        Stack()([np.ones(3), np.ones((3, 1))])
    with pytest.raises(ValueError, match="mismatched shapes.*sample 2"):
        Stack()([[1, 2], [3, 4], [5]])
    with pytest.raises(TypeError, match="mismatched dtypes.*float32.*float64"):
        Stack()([np.ones(2, np.float32), np.ones(2, np.float64)])
    with pytest.raises(TypeError, match="non-numeric"):
        Stack()([["a"], ["b"]])
    with pytest.raises(TypeError, match="sample 0 has type dict"):
        Stack()([{}])


# ----------------------------------------------------------------------------- Pad
def test_pad_basic_and_lengths():
    out, lengths = Pad(val=-1, ret_length=True)([[1, 2, 3, 4], [4, 5, 6], [8, 2]])
    assert torch.equal(out, torch.tensor([[1, 2, 3, 4], [4, 5, 6, -1], [8, 2, -1, -1]]))
    assert torch.equal(lengths, torch.tensor([4, 3, 2])) and lengths.dtype == torch.int64


def test_pad_axis1_gluon_example():
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = np.array([[5, 8], [1, 2]])
    out = Pad(axis=1, val=-1)([a, b])
    assert out.tolist() == [[[1, 2, 3, 4], [5, 6, 7, 8]], [[5, 8, -1, -1], [1, 2, -1, -1]]]
    assert out.is_contiguous()


def test_pad_boxes_per_image():
    boxes = [np.random.rand(n, 4).astype(np.float32) for n in (3, 0, 5)]
    out, n = Pad(axis=0, val=-1, ret_length=True)(boxes)
    assert out.shape == (3, 5, 4) and n.tolist() == [3, 0, 5]
    assert torch.all(out[1] == -1) and torch.equal(out[0, :3], torch.from_numpy(boxes[0]))


def test_pad_round_to_dtype_and_mixed_inputs():
    out = Pad(round_to=8)([torch.arange(3), np.arange(5), [1]])
    assert out.shape == (3, 8) and out.dtype == torch.int64
    assert Pad(dtype=torch.float16)([[1], [1, 2]]).dtype == torch.float16
    assert Pad()([[], [1, 2]]).tolist() == [[0, 0], [1, 2]]  # an empty list takes the batch dtype
    assert Pad(val=True)([np.array([False]), np.array([False, False])]).tolist() == [[False, True],
                                                                                   [False, False]]
    big = 2**62 + 1  # beyond double precision: must still be exact
    assert Pad(val=big)([[1], [1, 2]])[0, 1].item() == big


def test_pad_errors():
    with pytest.raises(ValueError, match="empty list"):
        Pad()([])
    with pytest.raises(ValueError, match="mismatched rank"):
        Pad()([np.ones((2, 4)), np.ones(3)])
    with pytest.raises(TypeError, match="mismatched dtypes"):
        Pad()([np.ones(2, np.float32), np.ones(3, np.int64)])
    with pytest.raises(ValueError, match="differ outside the padded axis 0.*sample 1"):
        Pad()([np.ones((2, 4)), np.ones((3, 5))])
    with pytest.raises(ValueError, match="out of range"):
        Pad(axis=2)([np.ones((2, 4))])
    with pytest.raises(ValueError, match="scalars"):
        Pad()([1, 2])
    with pytest.raises(ValueError, match="ragged"):
        Pad()([[[1, 2], [3]]])
    with pytest.raises(ValueError, match="cannot be stored"):
        Pad(val=0.5)([[1], [2, 3]])
    with pytest.raises(ValueError, match="round_to"):
        Pad(round_to=0)


@st.composite
def _pad_batches(draw):
    ndim = draw(st.integers(1, 3))
    axis = draw(st.integers(-ndim, ndim - 1))
    other = draw(st.lists(st.integers(0, 3), min_size=ndim, max_size=ndim))
    n = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.int64, np.float32, np.int8]))
    arrays = []
    for _ in range(n):
        shape = list(other)
        shape[axis] = draw(st.integers(0, 6))
        arrays.append(draw(hnp.arrays(dtype, shape, elements=st.integers(-100, 100))))
    return arrays, axis


@given(_pad_batches(), st.integers(-5, 5), st.one_of(st.none(), st.integers(1, 4)))
def test_pad_property(batch, val, round_to):
    arrays, axis = batch
    out, lengths = Pad(axis=axis, val=val, round_to=round_to, ret_length=True)(arrays)
    ax = axis % arrays[0].ndim
    longest = max(a.shape[ax] for a in arrays)
    target = longest if round_to is None else -(-longest // round_to) * round_to
    assert out.shape[ax + 1] == target and out.shape[0] == len(arrays)
    assert out.dtype == torch.from_numpy(arrays[0]).dtype
    assert lengths.tolist() == [a.shape[ax] for a in arrays]
    for i, a in enumerate(arrays):
        row = out[i]
        assert torch.equal(row.narrow(ax, 0, a.shape[ax]), torch.from_numpy(a))  # content preserved
        rest = row.narrow(ax, a.shape[ax], target - a.shape[ax])
        assert torch.all(rest == val)  # everything else is padding


@given(st.lists(st.lists(st.integers(-1000, 1000), max_size=8), min_size=1, max_size=6))
def test_pad_matches_pad_sequence(seqs):
    ours = Pad(val=7)(seqs)
    ref = torch.nn.utils.rnn.pad_sequence([torch.tensor(s, dtype=torch.int64) for s in seqs],
                                          batch_first=True, padding_value=7)
    assert torch.equal(ours, ref)


# ----------------------------------------------------------------------------- containers
def test_tuple_list_dict_namedtuple():
    data = [([1, 2, 3], 0, "a"), ([4], 1, "b")]
    x, y, s = Tuple(Pad(), Stack(), List())(data)
    assert x.tolist() == [[1, 2, 3], [4, 0, 0]] and y.tolist() == [0, 1] and s == ["a", "b"]
    assert Tuple([Pad(), Stack(), List()])(data)[2] == ["a", "b"]
    out = Dict({"data": Pad(), "label": Stack()})([{"data": [1, 2], "label": 0, "x": 1}, {"data": [3], "label": 1}])
    assert set(out) == {"data", "label"} and out["data"].tolist() == [[1, 2], [3, 0]]
    batch = NamedTuple(Sample, {"data": Pad(), "label": Stack()})([Sample([1, 2], 0), Sample([5], 1)])
    assert isinstance(batch, Sample) and batch.label.tolist() == [0, 1]
    assert NamedTuple(Sample, [Pad(), Stack()])([Sample([1], 0)]).data.tolist() == [[1]]


def test_container_errors():
    with pytest.raises(ValueError, match="has 2 batchify functions but sample 1 has 3 field"):
        Tuple(Pad(), Stack())([([1], 0), ([1], 0, 5)])
    with pytest.raises(ValueError, match="not both"):
        Tuple([Pad()], Stack())
    with pytest.raises(TypeError, match="not callable"):
        Tuple(Pad(), 3)
    with pytest.raises(ValueError, match="empty"):
        Tuple(Pad())([])
    with pytest.raises(ValueError, match="lacks key"):
        Dict({"a": Stack()})([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="2 fields"):
        NamedTuple(Sample, [Stack()])
    with pytest.raises(ValueError, match="missing functions"):
        NamedTuple(Sample, {"data": Stack()})
    with pytest.raises(TypeError, match="expected Sample"):
        NamedTuple(Sample, [Stack(), Stack()])([(1, 2)])
    with pytest.raises(ValueError, match="empty"):
        List()([])


def test_pickle_round_trip():
    fn = Tuple(Pad(axis=0, val=-1, round_to=4, ret_length=True), Stack(dtype=torch.float32),
               Dict({"k": List()}), NamedTuple(Sample, [Pad(), Stack()]))
    clone = pickle.loads(pickle.dumps(fn))
    data = [([1, 2], 3, {"k": "x"}, Sample([1], 0)), ([4], 5, {"k": "y"}, Sample([2, 3], 1))]
    a, b = fn(data), clone(data)
    assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[1], b[1]) and a[2] == b[2]


def test_dataloader_with_workers():
    tokens = [list(range(n)) for n in (3, 1, 4, 1, 5, 9, 2, 6)]
    ds = ArrayDataset(SimpleDataset(tokens), np.arange(8, dtype=np.int64))
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=Tuple(Pad(val=-1, ret_length=True), Stack()))
    batches = list(loader)
    assert len(batches) == 3
    (x, n), y = batches[0]
    assert x.shape == (3, 4) and n.tolist() == [3, 1, 4] and y.tolist() == [0, 1, 2]


def test_numpy_layouts_without_warnings(recwarn):
    rev = np.arange(5)[::-1]  # negative stride
    ro = np.arange(3)
    ro.flags.writeable = False  # e.g. a memory map
    swapped = np.arange(2, dtype=">i8")  # big-endian
    out = Pad()([rev, ro, swapped.astype(np.int64)])
    assert out.tolist() == [[4, 3, 2, 1, 0], [0, 1, 2, 0, 0], [0, 1, 0, 0, 0]]
    assert Stack()([swapped, swapped]).tolist() == [[0, 1], [0, 1]]
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]

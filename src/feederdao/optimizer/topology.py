"""Index structures of a radial view that the formulation and the price decomposition share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from feederdao.domain.network import NetworkView

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Topology:
    """Branch ends as view rows, the slack rows, and the path incidence of the tree.

    ``path[j, k] = 1`` when branch ``k`` lies on the path from bus ``j``'s substation to ``j``:
    a unit of consumption at ``j`` flows through exactly those branches (lossless), and the
    squared voltage at ``i`` falls by ``2 r_k / base`` per MW for each branch shared by the
    paths of ``i`` and ``j``.
    """

    from_pos: IntArray
    to_pos: IntArray
    slack_pos: IntArray
    root_of: IntArray
    path: sp.csr_matrix
    r_pu: npt.NDArray[np.float64]
    x_pu: npt.NDArray[np.float64]
    ratio: npt.NDArray[np.float64]


def topology(view: NetworkView) -> Topology:
    n_b = len(view.buses)
    from_pos = np.array([view.bus_position(b.from_bus) for b in view.branches], dtype=np.int64)
    to_pos = np.array([view.bus_position(b.to_bus) for b in view.branches], dtype=np.int64)
    slack_pos = np.array([view.bus_position(s.bus) for s in view.slacks], dtype=np.int64)
    root_of = np.empty(n_b, dtype=np.int64)
    rows: list[int] = []
    cols: list[int] = []
    paths: list[list[int]] = [[] for _ in range(n_b)]
    for j in range(n_b):  # buses are in breadth-first order: parents first
        k = view.parent_branch[j]
        if k < 0:
            root_of[j] = j
            continue
        parent = int(from_pos[k])
        root_of[j] = root_of[parent]
        paths[j] = [*paths[parent], k]
        rows.extend([j] * len(paths[j]))
        cols.extend(paths[j])
    path = sp.csr_matrix(
        (np.ones(len(rows)), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
        shape=(n_b, len(view.branches)),
    )
    return Topology(
        from_pos=from_pos,
        to_pos=to_pos,
        slack_pos=slack_pos,
        root_of=root_of,
        path=path,
        r_pu=np.array([b.r_pu for b in view.branches]),
        x_pu=np.array([b.x_pu for b in view.branches]),
        ratio=np.array([b.ratio for b in view.branches]),
    )

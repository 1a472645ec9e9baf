//! Native evaluator of ONNX `TreeEnsembleClassifier` / `TreeEnsembleRegressor` nodes
//! (ai.onnx.ml): the trees are flattened into struct-of-arrays at load time and scored without
//! ONNX Runtime, with ORT's arithmetic (f32 thresholds and f32 accumulation in tree order, then
//! base values and the post-transform), so results agree with ORT to ~1e-7.
//!
//! Scoring goes through a padded layout (`Padded`) when the trees allow one: oblivious trees
//! (CatBoost) as one split per level, other trees (XGBoost) padded to complete binary trees of
//! one depth, both scored without data-dependent branches, four trees side by side, their leaves
//! added in tree order. The node-by-node walk ([`TreeEnsemble::predict_walk`]) is the reference
//! and the fallback (trees deeper than the layouts take); the two agree bit for bit.

use prost::Message;

use super::ModelError;
use super::onnx::{AttributeProto, ModelProto, NodeProto};

/// Node comparison modes (ONNX `nodes_modes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum NodeMode {
    Leq = 0,
    Lt = 1,
    Gte = 2,
    Gt = 3,
    Eq = 4,
    Neq = 5,
    Leaf = 6,
}

/// Output post-transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    /// Raw scores.
    None,
    /// Logistic per score.
    Logistic,
    /// Softmax over the scores.
    Softmax,
}

/// A tree ensemble in flat arrays.
#[derive(Clone, Debug)]
pub struct TreeEnsemble {
    feature: Vec<u32>,
    threshold: Vec<f32>,
    true_child: Vec<u32>,
    false_child: Vec<u32>,
    mode: Vec<u8>,
    missing_true: Vec<bool>,
    /// Leaf weight per output column, `leaf_weight[node * columns + k]`.
    leaf_weight: Vec<f32>,
    roots: Vec<u32>,
    /// Every tree in one padded layout (oblivious or complete), when the trees allow one; else
    /// `None` and the trees are walked node by node.
    padded: Option<Padded>,
    columns: usize,
    base_values: Vec<f32>,
    post: PostTransform,
    binary_single_column: bool,
    /// Number of input features the trees reference (max feature id + 1).
    pub n_features_used: usize,
    /// ONNX operator type.
    pub op_type: String,
    /// Producer name from the model.
    pub producer: String,
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

/// The `post_transform` attribute.
fn post_transform(node: &NodeProto) -> Result<PostTransform, ModelError> {
    let post_name = attr(node, "post_transform")
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned());
    match post_name.as_deref() {
        None | Some("NONE") => Ok(PostTransform::None),
        Some("LOGISTIC") => Ok(PostTransform::Logistic),
        Some("SOFTMAX") => Ok(PostTransform::Softmax),
        Some(other) => Err(ModelError::Onnx(format!(
            "unsupported post_transform {other}"
        ))),
    }
}

/// The number of output columns the leaf weights fill, and whether a binary classifier stores
/// only one of its two columns.
fn output_columns(node: &NodeProto, classifier: bool, w_id: &[i64]) -> (usize, bool) {
    let n_labels = if classifier {
        ints(node, "classlabels_int64s")
            .len()
            .max(strings(node, "classlabels_strings").len())
    } else {
        attr(node, "n_targets").and_then(|a| a.i).unwrap_or(1) as usize
    };
    let max_id = w_id.iter().copied().max().unwrap_or(0).max(0) as usize;
    let columns = (max_id + 1).max(if classifier && n_labels > 2 {
        n_labels
    } else {
        1
    });
    (columns, classifier && n_labels == 2 && columns == 1)
}

/// A `nodes_modes` entry.
fn node_mode(text: &str) -> Result<NodeMode, ModelError> {
    Ok(match text {
        "BRANCH_LEQ" => NodeMode::Leq,
        "BRANCH_LT" => NodeMode::Lt,
        "BRANCH_GTE" => NodeMode::Gte,
        "BRANCH_GT" => NodeMode::Gt,
        "BRANCH_EQ" => NodeMode::Eq,
        "BRANCH_NEQ" => NodeMode::Neq,
        "LEAF" => NodeMode::Leaf,
        m => return Err(ModelError::Onnx(format!("unknown node mode {m}"))),
    })
}

fn ints(node: &NodeProto, name: &str) -> Vec<i64> {
    attr(node, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn floats(node: &NodeProto, name: &str) -> Vec<f32> {
    match attr(node, name) {
        Some(a) if !a.floats.is_empty() => a.floats.clone(),
        _ => attr(node, &format!("{name}_as_tensor"))
            .and_then(|a| a.t.as_ref())
            .map(super::onnx::TensorProto::to_f32)
            .unwrap_or_default(),
    }
}

fn strings(node: &NodeProto, name: &str) -> Vec<String> {
    attr(node, name)
        .map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl TreeEnsemble {
    /// Parses an ONNX model file's bytes and loads its (single) tree-ensemble node.
    ///
    /// # Errors
    /// [`ModelError::Onnx`] for undecodable protobuf, a missing or malformed tree node.
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, ModelError> {
        let model =
            ModelProto::decode(bytes).map_err(|e| ModelError::Onnx(format!("protobuf: {e}")))?;
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| ModelError::Onnx("model has no graph".into()))?;
        let node = graph
            .node
            .iter()
            .find(|n| {
                matches!(
                    n.op_type.as_deref(),
                    Some("TreeEnsembleClassifier" | "TreeEnsembleRegressor")
                )
            })
            .ok_or_else(|| ModelError::Onnx("no TreeEnsembleClassifier/Regressor node".into()))?;
        let mut e = Self::from_node(node)?;
        e.producer = model.producer_name.clone().unwrap_or_default();
        Ok(e)
    }

    fn from_node(node: &NodeProto) -> Result<Self, ModelError> {
        let bad = |m: String| ModelError::Onnx(m);
        let op_type = node.op_type.clone().unwrap_or_default();
        let classifier = op_type == "TreeEnsembleClassifier";
        let tree_ids = ints(node, "nodes_treeids");
        let node_ids = ints(node, "nodes_nodeids");
        let feature_ids = ints(node, "nodes_featureids");
        let values = floats(node, "nodes_values");
        let modes = strings(node, "nodes_modes");
        let trues = ints(node, "nodes_truenodeids");
        let falses = ints(node, "nodes_falsenodeids");
        let missing = ints(node, "nodes_missing_value_tracks_true");
        let n = tree_ids.len();
        if n == 0
            || [
                node_ids.len(),
                feature_ids.len(),
                values.len(),
                modes.len(),
                trues.len(),
                falses.len(),
            ]
            .iter()
            .any(|l| *l != n)
        {
            return Err(bad(format!(
                "node attribute arrays disagree in length (n = {n})"
            )));
        }
        let prefix = if classifier { "class" } else { "target" };
        let w_tree = ints(node, &format!("{prefix}_treeids"));
        let w_node = ints(node, &format!("{prefix}_nodeids"));
        let w_id = ints(node, &format!("{prefix}_ids"));
        let w_val = floats(node, &format!("{prefix}_weights"));
        if w_tree.len() != w_node.len() || w_tree.len() != w_id.len() || w_tree.len() != w_val.len()
        {
            return Err(bad("leaf weight arrays disagree in length".into()));
        }
        let post = post_transform(node)?;
        let (columns, binary_single_column) = output_columns(node, classifier, &w_id);
        // Index nodes by (tree, node id).
        let mut index = std::collections::HashMap::with_capacity(n);
        for i in 0..n {
            index.insert((tree_ids[i], node_ids[i]), i as u32);
        }
        let lookup = |t: i64, id: i64| -> Result<u32, ModelError> {
            index
                .get(&(t, id))
                .copied()
                .ok_or_else(|| ModelError::Onnx(format!("tree {t} references missing node {id}")))
        };
        let mut e = Self {
            feature: Vec::with_capacity(n),
            threshold: Vec::with_capacity(n),
            true_child: Vec::with_capacity(n),
            false_child: Vec::with_capacity(n),
            mode: Vec::with_capacity(n),
            missing_true: Vec::with_capacity(n),
            leaf_weight: vec![0.0; n * columns],
            roots: Vec::new(),
            padded: None,
            columns,
            base_values: floats(node, "base_values"),
            post,
            binary_single_column,
            n_features_used: 0,
            op_type,
            producer: String::new(),
        };
        let mut seen_tree = std::collections::HashSet::new();
        for i in 0..n {
            let mode = node_mode(&modes[i])?;
            if seen_tree.insert(tree_ids[i]) {
                e.roots.push(lookup(
                    tree_ids[i],
                    if index.contains_key(&(tree_ids[i], 0)) {
                        0
                    } else {
                        node_ids[i]
                    },
                )?);
            }
            let leaf = mode == NodeMode::Leaf;
            let f = if leaf {
                0
            } else {
                u32::try_from(feature_ids[i]).map_err(|_| bad("negative feature id".into()))?
            };
            e.n_features_used = e.n_features_used.max(f as usize + 1);
            e.feature.push(f);
            e.threshold.push(values[i]);
            e.mode.push(mode as u8);
            e.missing_true
                .push(missing.get(i).copied().unwrap_or(0) != 0);
            if leaf {
                e.true_child.push(i as u32);
                e.false_child.push(i as u32);
            } else {
                e.true_child.push(lookup(tree_ids[i], trues[i])?);
                e.false_child.push(lookup(tree_ids[i], falses[i])?);
            }
        }
        for k in 0..w_tree.len() {
            let i = lookup(w_tree[k], w_node[k])? as usize;
            if e.mode[i] != NodeMode::Leaf as u8 {
                return Err(bad(format!("weight on non-leaf node {}", w_node[k])));
            }
            let col = w_id[k].max(0) as usize;
            e.leaf_weight[i * columns + col] += w_val[k];
        }
        e.padded = Padded::build(&e);
        Ok(e)
    }

    fn is_leaf(&self, i: usize) -> bool {
        self.mode[i] == NodeMode::Leaf as u8
    }

    /// Node `i`'s split as the padded layouts store it (`n_features_used` ≤ 2^16 is checked
    /// before any layout is built).
    fn split(&self, i: usize) -> Split {
        Split {
            threshold: self.threshold[i],
            feature: self.feature[i] as u16,
            mode: self.mode[i],
            missing_true: self.missing_true[i],
        }
    }

    fn children(&self, level: &[usize]) -> Vec<usize> {
        level
            .iter()
            .flat_map(|&i| [self.true_child[i] as usize, self.false_child[i] as usize])
            .collect()
    }

    /// The depth of the tree at `root` (0 = a single leaf), or `None` if deeper than `max`.
    fn depth(&self, root: usize, max: usize) -> Option<usize> {
        let mut level = vec![root];
        for d in 0..=max {
            level.retain(|&i| !self.is_leaf(i));
            if level.is_empty() {
                return Some(d);
            }
            level = self.children(&level);
        }
        None
    }

    /// Whether the tree at `root` is oblivious: every level of its `depth` splits on one
    /// feature/threshold/mode/missing direction and all leaves are at `depth` (CatBoost's trees).
    fn is_oblivious(&self, root: usize, depth: usize) -> bool {
        let mut level = vec![root];
        for _ in 0..depth {
            let first = self.split(level[0]);
            if level
                .iter()
                .any(|&i| self.is_leaf(i) || !self.split(i).same(first))
            {
                return false;
            }
            level = self.children(&level);
        }
        true
    }

    /// The node reached from `root` by the first `len` decisions of `path` (its low `len` bits,
    /// most significant first, 1 = the true branch); stops early at a leaf.
    fn follow(&self, root: usize, path: usize, len: usize) -> usize {
        let mut i = root;
        for d in 0..len {
            if self.is_leaf(i) {
                break;
            }
            let go_true = path >> (len - 1 - d) & 1 == 1;
            i = if go_true {
                self.true_child[i]
            } else {
                self.false_child[i]
            } as usize;
        }
        i
    }

    /// Number of trees scored through the oblivious (CatBoost) layout.
    #[must_use]
    pub fn oblivious_trees(&self) -> usize {
        match &self.padded {
            Some(p) if p.oblivious => self.trees(),
            _ => 0,
        }
    }

    /// Number of trees scored through the complete-tree (branchless) layout.
    #[must_use]
    pub fn complete_trees(&self) -> usize {
        match &self.padded {
            Some(p) if !p.oblivious => self.trees(),
            _ => 0,
        }
    }

    /// Every (feature, threshold) pair of the split nodes (for test-vector generation).
    pub fn splits(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        (0..self.mode.len())
            .filter(|i| !self.is_leaf(*i))
            .map(|i| (self.feature[i] as usize, self.threshold[i]))
    }

    /// Number of trees.
    #[must_use]
    pub fn trees(&self) -> usize {
        self.roots.len()
    }

    /// Raw aggregated scores (before base values / post-transform) of column `col`: the padded
    /// layout if there is one, else the node walk. Both add the trees' leaves in tree order in
    /// f32, so they agree bit for bit.
    #[inline]
    fn raw(&self, x: &[f32], col: usize) -> f32 {
        match &self.padded {
            Some(p) => p.raw(x, col),
            None => self.raw_walk(x, col),
        }
    }

    /// [`TreeEnsemble::raw`] by walking every tree node by node (the reference).
    fn raw_walk(&self, x: &[f32], col: usize) -> f32 {
        let mut sum = 0.0f32;
        for &root in &self.roots {
            let mut i = root as usize;
            while !self.is_leaf(i) {
                let go_true = decide(
                    self.mode[i],
                    x[self.feature[i] as usize],
                    self.threshold[i],
                    self.missing_true[i],
                );
                i = if go_true {
                    self.true_child[i]
                } else {
                    self.false_child[i]
                } as usize;
            }
            sum += self.leaf_weight[i * self.columns + col];
        }
        sum
    }

    /// The probability of the positive class (classifier) or the first target (regressor),
    /// with ORT's semantics for the binary single-column case.
    ///
    /// `x` must hold at least [`TreeEnsemble::n_features_used`] values.
    #[must_use]
    pub fn predict(&self, x: &[f32]) -> f64 {
        self.predict_with(x, Self::raw)
    }

    /// [`TreeEnsemble::predict`] by walking every tree node by node, without the padded layouts:
    /// the reference the layouts are tested against (bit for bit).
    #[must_use]
    pub fn predict_walk(&self, x: &[f32]) -> f64 {
        self.predict_with(x, Self::raw_walk)
    }

    #[inline]
    fn predict_with(&self, x: &[f32], raw: impl Fn(&Self, &[f32], usize) -> f32) -> f64 {
        debug_assert!(x.len() >= self.n_features_used);
        if self.columns == 1 {
            let s = raw(self, x, 0) + self.base_values.first().copied().unwrap_or(0.0);
            return match self.post {
                PostTransform::Logistic => sigmoid_f32(s),
                _ if self.binary_single_column => f64::from(s),
                _ => f64::from(s),
            };
        }
        // Multi-column: positive class is column 1; column 0 only matters to the softmax.
        let s1 = raw(self, x, 1) + self.base_values.get(1).copied().unwrap_or(0.0);
        match self.post {
            PostTransform::Logistic => sigmoid_f32(s1),
            PostTransform::Softmax => {
                let s0 = raw(self, x, 0) + self.base_values.first().copied().unwrap_or(0.0);
                let m = s0.max(s1);
                let (e0, e1) = ((s0 - m).exp(), (s1 - m).exp());
                f64::from(e1 / (e0 + e1))
            }
            PostTransform::None => f64::from(s1),
        }
    }
}

/// Deepest oblivious trees scored through the oblivious layout.
const MAX_OBLIVIOUS_DEPTH: usize = 12;

/// Deepest trees scored through the complete-tree layout (`2^depth − 1` splits and `2^depth`
/// leaves per tree, whatever the tree's own shape); deeper ensembles are walked node by node.
const MAX_COMPLETE_DEPTH: usize = 8;

/// `MODE` of [`Split::go_true`] that reads each split's own mode.
const ANY_MODE: u8 = u8::MAX;

/// Trees of a padded layout scored side by side.
const LANES: usize = 4;

/// One split of a padded layout (8 bytes).
#[derive(Clone, Copy, Debug)]
struct Split {
    threshold: f32,
    feature: u16,
    mode: u8,
    missing_true: bool,
}

impl Split {
    /// Same feature, threshold (bit for bit), mode and missing direction.
    fn same(self, o: Self) -> bool {
        (
            self.feature,
            self.threshold.to_bits(),
            self.mode,
            self.missing_true,
        ) == (o.feature, o.threshold.to_bits(), o.mode, o.missing_true)
    }

    /// [`decide`] without a data-dependent branch: with `MODE` = [`ANY_MODE`] the split's own
    /// mode is matched (a branch on the mode only), else `MODE` is the mode of every split;
    /// `MISSING` = false: no split sends a NaN to its true branch.
    #[inline(always)]
    fn go_true<const MODE: u8, const MISSING: bool>(&self, x: &[f32]) -> bool {
        let v = x[usize::from(self.feature)];
        let t = self.threshold;
        let mode = if MODE == ANY_MODE { self.mode } else { MODE };
        // A NaN compares false in modes 0–4; `Neq` excludes it explicitly. Then NaN follows
        // `missing_true`, as in `decide` (with `MISSING` = false, `missing_true` is false).
        let hit = match mode {
            0 => v <= t,
            1 => v < t,
            2 => v >= t,
            3 => v > t,
            4 => v == t,
            _ => v != t && !v.is_nan(),
        };
        if MISSING {
            hit | (self.missing_true & v.is_nan())
        } else {
            hit
        }
    }
}

/// Every tree of an ensemble padded to one depth `depth`, so that each tree is scored with a
/// fixed number of comparisons and no data-dependent branch, then its leaf is looked up in a
/// table of `2^depth` leaves indexed by the decisions (bit set = true branch, first decision
/// most significant). A tree shallower than `depth` gets dummy splits below its leaves, whose
/// subtrees repeat the leaf, so its score does not depend on them.
/// - oblivious (every tree oblivious, CatBoost): one split per level, `depth` splits per tree;
/// - complete (otherwise, e.g. XGBoost): a complete binary tree in breadth-first order,
///   `2^depth − 1` splits per tree, the children of split `i` at `2i + 1` (false) and
///   `2i + 2` (true).
#[derive(Clone, Debug)]
struct Padded {
    oblivious: bool,
    depth: usize,
    trees: usize,
    /// The mode of every split if all share one (the scoring loop is specialised to it).
    uniform_mode: Option<u8>,
    /// Whether any split sends a NaN to its true branch.
    any_missing_true: bool,
    splits: Vec<Split>,
    /// Leaf weights by column, then tree, then leaf index: `(col × trees + tree) × 2^depth + idx`.
    leaves: Vec<f32>,
}

impl Padded {
    /// The padded layout of `e`'s trees, if they allow one.
    fn build(e: &TreeEnsemble) -> Option<Self> {
        if e.n_features_used > 1 << 16 {
            return None;
        }
        let mut depths = Vec::with_capacity(e.roots.len());
        for &root in &e.roots {
            depths.push(e.depth(root as usize, MAX_OBLIVIOUS_DEPTH)?);
        }
        let depth = depths.iter().copied().max()?;
        let oblivious = e
            .roots
            .iter()
            .zip(&depths)
            .all(|(&root, &d)| e.is_oblivious(root as usize, d));
        if depth == 0 || (!oblivious && depth > MAX_COMPLETE_DEPTH) {
            return None;
        }
        let mut modes = (0..e.mode.len())
            .filter(|&i| !e.is_leaf(i))
            .map(|i| e.mode[i]);
        let first = modes.next();
        let uniform_mode = if modes.all(|m| Some(m) == first) {
            first
        } else {
            None
        };
        // Padding: any split (feature 0 exists: depth ≥ 1), in the uniform mode if there is one.
        let dummy = Split {
            threshold: 0.0,
            feature: 0,
            mode: uniform_mode.unwrap_or(NodeMode::Lt as u8),
            missing_true: false,
        };
        let mut p = Self {
            oblivious,
            depth,
            trees: e.roots.len(),
            uniform_mode,
            any_missing_true: (0..e.mode.len()).any(|i| !e.is_leaf(i) && e.missing_true[i]),
            splits: Vec::new(),
            leaves: vec![0.0; (e.columns * e.roots.len()) << depth],
        };
        for (t, &root) in e.roots.iter().enumerate() {
            let root = root as usize;
            if oblivious {
                // Level d's split is the split of any node of the level, e.g. the all-false path's.
                for d in 0..depth {
                    let i = e.follow(root, 0, d);
                    p.splits.push(if e.is_leaf(i) { dummy } else { e.split(i) });
                }
            } else {
                // Split `2^d − 1 + j` is the node at the end of path `j` of length `d`.
                for d in 0..depth {
                    for j in 0..1usize << d {
                        let i = e.follow(root, j, d);
                        p.splits.push(if e.is_leaf(i) { dummy } else { e.split(i) });
                    }
                }
            }
            for idx in 0..1usize << depth {
                let leaf = e.follow(root, idx, depth);
                for col in 0..e.columns {
                    p.leaves[(col * p.trees + t) << depth | idx] =
                        e.leaf_weight[leaf * e.columns + col];
                }
            }
        }
        Some(p)
    }

    /// Splits per tree.
    fn splits_per_tree(&self) -> usize {
        if self.oblivious {
            self.depth
        } else {
            (1 << self.depth) - 1
        }
    }

    /// Raw score of column `col`: the trees' leaves added in tree order.
    #[inline]
    fn raw(&self, x: &[f32], col: usize) -> f32 {
        match (self.uniform_mode, self.any_missing_true) {
            (Some(0), false) => self.raw_in::<0, false>(x, col),
            (Some(1), false) => self.raw_in::<1, false>(x, col),
            (Some(2), false) => self.raw_in::<2, false>(x, col),
            (Some(3), false) => self.raw_in::<3, false>(x, col),
            _ => self.raw_in::<ANY_MODE, true>(x, col),
        }
    }

    #[inline(always)]
    fn raw_in<const MODE: u8, const MISSING: bool>(&self, x: &[f32], col: usize) -> f32 {
        let per_tree = self.splits_per_tree();
        let n_leaves = 1usize << self.depth;
        let leaves = &self.leaves[col * self.trees * n_leaves..][..self.trees * n_leaves];
        let mut groups = self.splits.chunks_exact(per_tree * LANES);
        let mut leaf_groups = leaves.chunks_exact(n_leaves * LANES);
        let mut sum = 0.0f32;
        for (splits, leaves) in (&mut groups).zip(&mut leaf_groups) {
            let idx = self.leaf_indices::<LANES, MODE, MISSING>(splits, per_tree, x);
            for (k, i) in idx.into_iter().enumerate() {
                sum += leaves[k * n_leaves + i];
            }
        }
        let rest = groups.remainder().chunks_exact(per_tree);
        for (splits, leaves) in rest.zip(leaf_groups.remainder().chunks_exact(n_leaves)) {
            let [i] = self.leaf_indices::<1, MODE, MISSING>(splits, per_tree, x);
            sum += leaves[i];
        }
        sum
    }

    /// The leaf index of each of `K` consecutive trees, whose splits are `splits`
    /// (`per_tree` each), computed side by side: `K` independent chains of comparisons.
    #[inline(always)]
    fn leaf_indices<const K: usize, const MODE: u8, const MISSING: bool>(
        &self,
        splits: &[Split],
        per_tree: usize,
        x: &[f32],
    ) -> [usize; K] {
        let trees: [&[Split]; K] = std::array::from_fn(|k| &splits[k * per_tree..][..per_tree]);
        let mut idx = [0usize; K];
        if self.oblivious {
            for d in 0..self.depth {
                for (i, tree) in idx.iter_mut().zip(trees) {
                    let go = tree[d].go_true::<MODE, MISSING>(x);
                    *i = *i << 1 | usize::from(go);
                }
            }
        } else {
            for _ in 0..self.depth {
                for (i, tree) in idx.iter_mut().zip(trees) {
                    let go = tree[*i].go_true::<MODE, MISSING>(x);
                    *i = 2 * *i + 1 + usize::from(go);
                }
            }
            // Breadth-first position of the leaf → leaf index.
            for i in &mut idx {
                *i -= per_tree;
            }
        }
        idx
    }
}

/// One node's decision (ONNX semantics; NaN follows `missing_value_tracks_true`).
#[inline(always)]
fn decide(mode: u8, v: f32, t: f32, missing_true: bool) -> bool {
    if v.is_nan() {
        return missing_true;
    }
    match mode {
        0 => v <= t,
        1 => v < t,
        2 => v >= t,
        3 => v > t,
        4 => v == t,
        _ => v != t,
    }
}

fn sigmoid_f32(s: f32) -> f64 {
    f64::from(1.0 / (1.0 + (-s).exp()))
}

#[cfg(test)]
mod tests {
    //! The padded layouts against the node walk, bit for bit, on random ensembles: every mode,
    //! NaN sent either way, uneven and single-leaf trees, tree counts that are not a multiple of
    //! the lanes, one and two output columns, every post-transform. The shipped model is
    //! checked the same way in `tests/model_equality.rs`.
    #![allow(clippy::unwrap_used)]

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const FEATURES: usize = 6;
    /// A small threshold pool, so that random inputs often equal a threshold exactly.
    const POOL: [f32; 7] = [-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.25];
    const MODES: [&str; 6] = [
        "BRANCH_LEQ",
        "BRANCH_LT",
        "BRANCH_GTE",
        "BRANCH_GT",
        "BRANCH_EQ",
        "BRANCH_NEQ",
    ];

    /// How the random splits are drawn.
    #[derive(Clone, Copy)]
    struct Shape {
        /// Oblivious trees (one split per level, full) instead of random ones.
        oblivious: bool,
        max_depth: usize,
        /// One mode for every split (index into `MODES`), else random per split.
        mode: Option<usize>,
        /// Probability that a split sends NaN to its true branch.
        missing: f64,
    }

    #[derive(Default)]
    struct Nodes {
        tree: Vec<i64>,
        id: Vec<i64>,
        feature: Vec<i64>,
        value: Vec<f32>,
        mode: Vec<Vec<u8>>,
        t: Vec<i64>,
        f: Vec<i64>,
        missing: Vec<i64>,
        w_tree: Vec<i64>,
        w_node: Vec<i64>,
        w_id: Vec<i64>,
        w_val: Vec<f32>,
    }

    impl Nodes {
        /// Adds node `id` of tree `tree` (ids in pre-order) and its subtree; returns the next id.
        /// `level_split` gives the split of every level for oblivious trees.
        #[allow(clippy::too_many_arguments)]
        fn add(
            &mut self,
            rng: &mut StdRng,
            s: Shape,
            tree: i64,
            id: i64,
            depth_left: usize,
            levels: &[(i64, f32, usize, bool)],
            columns: i64,
        ) -> i64 {
            let at = self.tree.len();
            self.tree.push(tree);
            self.id.push(id);
            let leaf = if s.oblivious {
                levels.is_empty()
            } else {
                depth_left == 0 || rng.random_bool(0.3)
            };
            if leaf {
                self.feature.push(0);
                self.value.push(0.0);
                self.mode.push(b"LEAF".to_vec());
                self.t.push(0);
                self.f.push(0);
                self.missing.push(0);
                for c in 0..columns {
                    self.w_tree.push(tree);
                    self.w_node.push(id);
                    self.w_id.push(c);
                    self.w_val.push(rng.random_range(-1.0f32..1.0));
                }
                return id + 1;
            }
            let (feature, value, mode, missing) = if s.oblivious {
                levels[0]
            } else {
                split(rng, s)
            };
            self.feature.push(feature);
            self.value.push(value);
            self.mode.push(MODES[mode].as_bytes().to_vec());
            self.missing.push(i64::from(missing));
            self.t.push(id + 1);
            self.f.push(0);
            let rest = levels.get(1..).unwrap_or(&[]);
            let next = self.add(rng, s, tree, id + 1, depth_left - 1, rest, columns);
            self.f[at] = next;
            self.add(rng, s, tree, next, depth_left - 1, rest, columns)
        }
    }

    fn split(rng: &mut StdRng, s: Shape) -> (i64, f32, usize, bool) {
        (
            rng.random_range(0..FEATURES as i64),
            POOL[rng.random_range(0..POOL.len())],
            s.mode.unwrap_or_else(|| rng.random_range(0..MODES.len())),
            rng.random_bool(s.missing),
        )
    }

    fn ints(name: &str, v: Vec<i64>) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            ints: v,
            ..AttributeProto::default()
        }
    }

    fn floats(name: &str, v: Vec<f32>) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            floats: v,
            ..AttributeProto::default()
        }
    }

    /// A random classifier (`columns` = 1 or 2, `post`) or, with `post` = None, a regressor.
    fn ensemble(seed: u64, trees: i64, s: Shape, columns: i64, post: Option<&str>) -> TreeEnsemble {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut n = Nodes::default();
        for tree in 0..trees {
            let depth = rng.random_range(0..=s.max_depth);
            let levels: Vec<_> = (0..depth).map(|_| split(&mut rng, s)).collect();
            n.add(&mut rng, s, tree, 0, depth, &levels, columns);
        }
        let prefix = if post.is_some() { "class" } else { "target" };
        let mut attribute = vec![
            ints("nodes_treeids", n.tree),
            ints("nodes_nodeids", n.id),
            ints("nodes_featureids", n.feature),
            floats("nodes_values", n.value),
            AttributeProto {
                name: Some("nodes_modes".into()),
                strings: n.mode,
                ..AttributeProto::default()
            },
            ints("nodes_truenodeids", n.t),
            ints("nodes_falsenodeids", n.f),
            ints("nodes_missing_value_tracks_true", n.missing),
            ints(&format!("{prefix}_treeids"), n.w_tree),
            ints(&format!("{prefix}_nodeids"), n.w_node),
            ints(&format!("{prefix}_ids"), n.w_id),
            floats(&format!("{prefix}_weights"), n.w_val),
            floats("base_values", vec![0.25; columns as usize]),
        ];
        match post {
            Some(p) => {
                attribute.push(ints("classlabels_int64s", vec![0, 1]));
                attribute.push(AttributeProto {
                    name: Some("post_transform".into()),
                    s: Some(p.as_bytes().to_vec()),
                    ..AttributeProto::default()
                });
            }
            None => attribute.push(AttributeProto {
                name: Some("n_targets".into()),
                i: Some(columns),
                ..AttributeProto::default()
            }),
        }
        let node = NodeProto {
            op_type: Some(
                if post.is_some() {
                    "TreeEnsembleClassifier"
                } else {
                    "TreeEnsembleRegressor"
                }
                .into(),
            ),
            attribute,
            ..NodeProto::default()
        };
        TreeEnsemble::from_node(&node).unwrap()
    }

    /// Inputs drawn from the thresholds (exactly and ±1 ulp), NaN, ±∞, ±0 and random values.
    fn input(rng: &mut StdRng) -> [f32; FEATURES] {
        let mut x = [0.0; FEATURES];
        for v in &mut x {
            let t = POOL[rng.random_range(0..POOL.len())];
            *v = match rng.random_range(0..8) {
                0 | 1 => t,
                2 => f32::from_bits(t.to_bits().wrapping_add(1)),
                3 => f32::from_bits(t.to_bits().wrapping_sub(1)),
                4 => f32::NAN,
                5 => [f32::INFINITY, f32::NEG_INFINITY, -0.0, f32::MIN_POSITIVE]
                    [rng.random_range(0..4)],
                _ => rng.random_range(-4.0f32..4.0),
            };
        }
        x
    }

    fn assert_bitwise_equal(e: &TreeEnsemble, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..5_000 {
            let x = input(&mut rng);
            let (fast, walk) = (e.predict(&x), e.predict_walk(&x));
            assert_eq!(
                fast.to_bits(),
                walk.to_bits(),
                "{fast} vs walk {walk} at {x:?}"
            );
        }
    }

    #[test]
    fn complete_layout_equals_the_walk_bit_for_bit() {
        let mut case = 0;
        for mode in [Some(0), Some(1), Some(2), Some(3), Some(4), Some(5), None] {
            for missing in [0.0, 0.5] {
                for (trees, max_depth) in [(3, 2), (13, 3), (40, 5), (17, MAX_COMPLETE_DEPTH)] {
                    case += 1;
                    let s = Shape {
                        oblivious: false,
                        max_depth,
                        mode,
                        missing,
                    };
                    let e = ensemble(case, trees, s, 1, Some("LOGISTIC"));
                    if trees > 3 {
                        // (Three small trees may all be oblivious, or have no NaN-true split.)
                        assert_eq!(e.complete_trees(), e.trees(), "case {case}");
                        let p = e.padded.as_ref().unwrap();
                        assert_eq!(p.any_missing_true, missing > 0.0, "case {case}");
                        assert_eq!(p.uniform_mode, mode.map(|m| m as u8), "case {case}");
                    }
                    assert_bitwise_equal(&e, case);
                }
            }
        }
    }

    #[test]
    fn oblivious_layout_equals_the_walk_bit_for_bit() {
        let mut case = 100;
        for mode in [Some(1), Some(3), None] {
            for missing in [0.0, 0.5] {
                for (trees, max_depth) in [(5, 1), (13, 3), (33, 6)] {
                    case += 1;
                    let s = Shape {
                        oblivious: true,
                        max_depth,
                        mode,
                        missing,
                    };
                    let e = ensemble(case, trees, s, 2, Some("LOGISTIC"));
                    assert_eq!(e.oblivious_trees(), e.trees(), "case {case}");
                    assert_bitwise_equal(&e, case);
                }
            }
        }
    }

    #[test]
    fn every_output_shape_equals_the_walk_bit_for_bit() {
        let s = Shape {
            oblivious: false,
            max_depth: 4,
            mode: None,
            missing: 0.3,
        };
        let o = Shape {
            oblivious: true,
            ..s
        };
        for (i, post) in [Some("LOGISTIC"), Some("SOFTMAX"), Some("NONE"), None]
            .into_iter()
            .enumerate()
        {
            for columns in [1, 2] {
                for shape in [s, o] {
                    let seed = 200 + i as u64 * 4 + columns as u64 * 2 + u64::from(shape.oblivious);
                    let e = ensemble(seed, 21, shape, columns, post);
                    assert!(e.padded.is_some());
                    assert_bitwise_equal(&e, seed);
                }
            }
        }
    }

    #[test]
    fn trees_too_deep_for_the_complete_layout_are_walked() {
        let s = Shape {
            oblivious: false,
            max_depth: 12,
            mode: None,
            missing: 0.3,
        };
        // Enough trees that one reaches past MAX_COMPLETE_DEPTH.
        let e = ensemble(300, 200, s, 1, Some("LOGISTIC"));
        assert!(e.padded.is_none());
        assert_eq!(e.complete_trees() + e.oblivious_trees(), 0);
        assert_bitwise_equal(&e, 300);
    }
}

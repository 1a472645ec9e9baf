//! Native evaluator of ONNX `TreeEnsembleClassifier` / `TreeEnsembleRegressor` nodes
//! (ai.onnx.ml): the trees are flattened into struct-of-arrays at load time and scored without
//! ONNX Runtime, with ORT's arithmetic (f32 thresholds and f32 accumulation in tree order, then
//! base values and the post-transform), so results agree with ORT to ~1e-7.

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
    /// Per tree: `u32::MAX` = generic walk from `roots`, else index into `oblivious`.
    oblivious_of: Vec<u32>,
    oblivious: Vec<Oblivious>,
    /// Leaf tables of the oblivious trees: `2^depth × columns` weights each.
    oblivious_leaves: Vec<f32>,
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
            oblivious_of: Vec::new(),
            oblivious: Vec::new(),
            oblivious_leaves: Vec::new(),
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
        for t in 0..e.roots.len() {
            let idx = e.detect_oblivious(e.roots[t] as usize);
            e.oblivious_of.push(idx);
        }
        Ok(e)
    }

    /// If the tree at `root` is oblivious (every level splits on one feature/threshold/mode, all
    /// leaves at the same depth — CatBoost's trees), builds its leaf table and returns its index.
    fn detect_oblivious(&mut self, root: usize) -> u32 {
        let mut level = vec![root];
        let mut splits: Vec<(u32, f32, u8, bool)> = Vec::new();
        loop {
            let first = level[0];
            if self.mode[first] == NodeMode::Leaf as u8 {
                if level.iter().any(|&i| self.mode[i] != NodeMode::Leaf as u8) {
                    return u32::MAX;
                }
                break;
            }
            let key = (
                self.feature[first],
                self.threshold[first],
                self.mode[first],
                self.missing_true[first],
            );
            if splits.len() >= MAX_OBLIVIOUS_DEPTH
                || level.iter().any(|&i| {
                    (
                        self.feature[i],
                        self.threshold[i].to_bits(),
                        self.mode[i],
                        self.missing_true[i],
                    ) != (key.0, key.1.to_bits(), key.2, key.3)
                })
            {
                return u32::MAX;
            }
            splits.push(key);
            level = level
                .iter()
                .flat_map(|&i| [self.true_child[i] as usize, self.false_child[i] as usize])
                .collect();
        }
        let depth = splits.len();
        let mut ob = Oblivious {
            depth: depth as u8,
            feature: [0; MAX_OBLIVIOUS_DEPTH],
            threshold: [0.0; MAX_OBLIVIOUS_DEPTH],
            mode: [0; MAX_OBLIVIOUS_DEPTH],
            missing_true: [false; MAX_OBLIVIOUS_DEPTH],
            leaves: self.oblivious_leaves.len() as u32,
        };
        for (d, (f, t, m, miss)) in splits.iter().enumerate() {
            ob.feature[d] = *f;
            ob.threshold[d] = *t;
            ob.mode[d] = *m;
            ob.missing_true[d] = *miss;
        }
        // Leaf table: bit d (MSB first) = the decision at depth d was "true".
        for idx in 0..(1usize << depth) {
            let mut i = root;
            for d in 0..depth {
                let go_true = idx >> (depth - 1 - d) & 1 == 1;
                i = if go_true {
                    self.true_child[i]
                } else {
                    self.false_child[i]
                } as usize;
            }
            let w = &self.leaf_weight[i * self.columns..(i + 1) * self.columns];
            self.oblivious_leaves.extend_from_slice(w);
        }
        self.oblivious.push(ob);
        (self.oblivious.len() - 1) as u32
    }

    /// Number of trees scored through the oblivious (CatBoost) fast path.
    #[must_use]
    pub fn oblivious_trees(&self) -> usize {
        self.oblivious.len()
    }

    /// Every (feature, threshold) pair of the split nodes (for test-vector generation).
    pub fn splits(&self) -> impl Iterator<Item = (usize, f32)> + '_ {
        (0..self.mode.len())
            .filter(|i| self.mode[*i] != NodeMode::Leaf as u8)
            .map(|i| (self.feature[i] as usize, self.threshold[i]))
    }

    /// Number of trees.
    #[must_use]
    pub fn trees(&self) -> usize {
        self.roots.len()
    }

    /// Raw aggregated scores (before base values / post-transform) of column `col`.
    #[inline]
    fn raw(&self, x: &[f32], col: usize) -> f32 {
        let mut sum = 0.0f32;
        for (&root, &ob) in self.roots.iter().zip(&self.oblivious_of) {
            if ob != u32::MAX {
                let o = &self.oblivious[ob as usize];
                let mut idx = 0usize;
                for d in 0..o.depth as usize {
                    let go = decide(
                        o.mode[d],
                        x[o.feature[d] as usize],
                        o.threshold[d],
                        o.missing_true[d],
                    );
                    idx = idx << 1 | usize::from(go);
                }
                sum += self.oblivious_leaves[o.leaves as usize + idx * self.columns + col];
                continue;
            }
            let mut i = root as usize;
            loop {
                let mode = self.mode[i];
                if mode == NodeMode::Leaf as u8 {
                    break;
                }
                let go_true = decide(
                    mode,
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
        debug_assert!(x.len() >= self.n_features_used);
        if self.columns == 1 {
            let s = self.raw(x, 0) + self.base_values.first().copied().unwrap_or(0.0);
            return match self.post {
                PostTransform::Logistic => sigmoid_f32(s),
                _ if self.binary_single_column => f64::from(s),
                _ => f64::from(s),
            };
        }
        // Multi-column: positive class is column 1.
        let s0 = self.raw(x, 0) + self.base_values.first().copied().unwrap_or(0.0);
        let s1 = self.raw(x, 1) + self.base_values.get(1).copied().unwrap_or(0.0);
        match self.post {
            PostTransform::Logistic => sigmoid_f32(s1),
            PostTransform::Softmax => {
                let m = s0.max(s1);
                let (e0, e1) = ((s0 - m).exp(), (s1 - m).exp());
                f64::from(e1 / (e0 + e1))
            }
            PostTransform::None => f64::from(s1),
        }
    }
}

/// Deepest oblivious tree handled by the fast path.
const MAX_OBLIVIOUS_DEPTH: usize = 12;

/// One oblivious tree: one split per level, leaves in a table indexed by the decision bits.
#[derive(Clone, Copy, Debug)]
struct Oblivious {
    depth: u8,
    feature: [u32; MAX_OBLIVIOUS_DEPTH],
    threshold: [f32; MAX_OBLIVIOUS_DEPTH],
    mode: [u8; MAX_OBLIVIOUS_DEPTH],
    missing_true: [bool; MAX_OBLIVIOUS_DEPTH],
    leaves: u32,
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

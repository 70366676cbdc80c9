//! PyTorch checkpoints (`torch.save`: `.pth`, `.pt`, pycls's `.pyth`) read in Rust, so that
//! loading one needs no Python: the state dict inside becomes a safetensors checkpoint in memory,
//! which the loader then checks like any other.
//!
//! Two layouts exist. Since PyTorch 1.6, a zip archive: `<name>/data.pkl` (the pickled object)
//! and `<name>/data/<key>` (each storage's raw bytes). Before it, one stream: a magic number, a
//! protocol version, system information, the object, the sorted storage keys, then each
//! storage as an 8-byte element count and its bytes. Both pickle the object with protocol 2,
//! tensors as calls of `torch._utils._rebuild_tensor_v2` on storages given as persistent ids.
//!
//! The unpickler here builds data only (dictionaries, lists, tuples, numbers, strings and the
//! tensors those calls describe): any other callable named in the file stays an opaque value
//! and nothing runs. Every length is checked against the bytes present, nesting is bounded and
//! copies made by memo references are counted against the input's size, so a hostile file is
//! an error, never a crash, a hang or an unbounded allocation.

use std::collections::HashMap;
use std::io::Read;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// The most containers nested in one another (real checkpoints nest a handful).
const MAX_DEPTH: usize = 64;
/// The largest pickle read (a state dict's pickle is kilobytes to a few megabytes).
const MAX_PICKLE_BYTES: u64 = 256 << 20;
/// Values a pickle may copy through memo references, per byte of pickle (plus a constant).
const COPIES_PER_BYTE: usize = 16;
/// Legacy torch.save's magic number and protocol version.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const LEGACY_PROTOCOL: i64 = 1001;

/// Whether `bytes` start like a PyTorch checkpoint of either layout.
pub(super) fn is_pytorch(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a])
}

/// The state dict in the PyTorch checkpoint `bytes`, as a safetensors checkpoint: a plain state
/// dict, or one under `model_state` (pycls), `state_dict` or `model` (training checkpoints);
/// a common `module.` or `model.` prefix is dropped, F64 tensors become F32, every tensor is
/// made contiguous and only the keys `keep` accepts are written. `Err` says what is wrong with
/// the file.
pub(super) fn to_safetensors(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Result<Vec<u8>, String> {
    let (root, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(bytes)?
    } else {
        read_legacy(bytes)?
    };
    let tensors = state_dict(root)?;
    let mut owned = Vec::with_capacity(tensors.len());
    for (key, tensor) in tensors.into_iter().filter(|(key, _)| keep(key)) {
        let data = storages.get(&tensor.key).ok_or_else(|| {
            format!(
                "tensor `{key}` refers to storage {}, which the file lacks",
                tensor.key
            )
        })?;
        let (dtype, values) =
            contiguous(&tensor, data).map_err(|reason| format!("tensor `{key}`: {reason}"))?;
        owned.push((key, dtype, tensor.shape, values));
    }
    let views = owned
        .iter()
        .map(|(key, dtype, shape, values)| {
            TensorView::new(*dtype, shape.clone(), values)
                .map(|view| (key.clone(), view))
                .map_err(|error| format!("tensor `{key}`: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None).map_err(|error| error.to_string())
}

/// The element types of the storages torch.save writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Element {
    /// The element type of a storage class named in a pickle (`torch.FloatStorage`).
    fn of_storage(name: &str) -> Option<Element> {
        Some(match name {
            "FloatStorage" => Element::F32,
            "DoubleStorage" => Element::F64,
            "HalfStorage" => Element::F16,
            "BFloat16Storage" => Element::BF16,
            "LongStorage" => Element::I64,
            "IntStorage" => Element::I32,
            "ShortStorage" => Element::I16,
            "CharStorage" => Element::I8,
            "ByteStorage" => Element::U8,
            "BoolStorage" => Element::Bool,
            _ => return None,
        })
    }

    fn bytes(self) -> usize {
        match self {
            Element::F64 | Element::I64 => 8,
            Element::F32 | Element::I32 => 4,
            Element::F16 | Element::BF16 | Element::I16 => 2,
            Element::I8 | Element::U8 | Element::Bool => 1,
        }
    }

    /// How the tensor is stored in safetensors: as it is, but F64 as F32 (the loader reads
    /// F32, F16 and BF16).
    fn dtype(self) -> Dtype {
        match self {
            Element::F32 | Element::F64 => Dtype::F32,
            Element::F16 => Dtype::F16,
            Element::BF16 => Dtype::BF16,
            Element::I64 => Dtype::I64,
            Element::I32 => Dtype::I32,
            Element::I16 => Dtype::I16,
            Element::I8 => Dtype::I8,
            Element::U8 => Dtype::U8,
            Element::Bool => Dtype::BOOL,
        }
    }
}

/// A tensor as a pickle describes it: a view of a storage.
#[derive(Clone, Debug)]
struct Tensor {
    element: Element,
    /// The storage's key (its file in the archive, its place in the legacy stream).
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// What the unpickler builds.
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i128),
    /// A float (no checkpoint value a state dict needs).
    Float,
    Str(String),
    /// Bytes (no checkpoint value a state dict needs).
    Bytes,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A class or function named by the pickle (`module.name`), never imported.
    Global(String),
    Storage {
        element: Element,
        key: String,
    },
    Tensor(Tensor),
    /// What calling a callable other than a tensor's rebuild would have made.
    Opaque(String),
}

impl Value {
    /// Whether containers nest deeper than `limit` levels below this value (recursing at most
    /// that deep).
    fn deeper_than(&self, limit: usize) -> bool {
        let children: Box<dyn Iterator<Item = &Value>> = match self {
            Value::Tuple(items) | Value::List(items) => Box::new(items.iter()),
            Value::Dict(items) => Box::new(items.iter().flat_map(|(k, v)| [k, v])),
            _ => return false,
        };
        limit == 0
            || children
                .into_iter()
                .any(|child| child.deeper_than(limit - 1))
    }

    /// Values in this one, itself included: what cloning it costs.
    fn size(&self) -> usize {
        1 + match self {
            Value::Tuple(items) | Value::List(items) => items.iter().map(Value::size).sum(),
            Value::Dict(items) => items.iter().map(|(k, v)| k.size() + v.size()).sum(),
            _ => 0,
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float => "a float".into(),
            Value::Str(_) => "a string".into(),
            Value::Bytes => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(name) => format!("the class `{name}`"),
            Value::Storage { .. } => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Opaque(name) => format!("a `{name}` object"),
        }
    }
}

/// A pickle being read: its bytes, position, stack, memo and copy budget.
struct Unpickler<'a> {
    bytes: &'a [u8],
    position: usize,
    stack: Vec<Value>,
    /// Where each MARK left the stack.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    copies_left: usize,
}

impl<'a> Unpickler<'a> {
    fn new(bytes: &'a [u8], position: usize) -> Self {
        Unpickler {
            bytes,
            position,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            copies_left: bytes
                .len()
                .saturating_mul(COPIES_PER_BYTE)
                .saturating_add(1 << 16),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self
            .position
            .checked_add(count)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("the pickle ends in the middle of a value (the file is truncated)")?;
        let taken = &self.bytes[self.position..end];
        self.position = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.position..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the pickle ends in the middle of a name")?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| "a name is not UTF-8 text")?;
        self.position += end + 1;
        Ok(text.to_owned())
    }

    fn text(&mut self, length: usize) -> Result<String, String> {
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8 text".to_owned())
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("the pickle takes a value from an empty stack".into());
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "the pickle changes a value on an empty stack".to_owned())
    }

    /// The values pushed since the last MARK, which is removed.
    fn since_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or("the pickle closes a MARK it never opened")?;
        Ok(self.stack.split_off(mark))
    }

    fn nested(value: Value) -> Result<Value, String> {
        if value.deeper_than(MAX_DEPTH) {
            return Err(format!("containers nest more than {MAX_DEPTH} deep"));
        }
        Ok(value)
    }

    fn memoize(&mut self, index: u32) -> Result<(), String> {
        let value = self
            .stack
            .last()
            .ok_or("the pickle memoizes a value from an empty stack")?
            .clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn recall(&mut self, index: u32) -> Result<(), String> {
        let value = self.memo.get(&index).ok_or_else(|| {
            format!("the pickle refers to memo entry {index}, which it never made")
        })?;
        self.copies_left = self
            .copies_left
            .checked_sub(value.size())
            .ok_or("the pickle copies more values than a checkpoint of its size can hold")?;
        let value = value.clone();
        self.stack.push(value);
        Ok(())
    }

    /// Runs the pickle from the current position to its STOP; returns the value built.
    fn load(
        &mut self,
        persistent: &mut dyn FnMut(Value) -> Result<Value, String>,
    ) -> Result<Value, String> {
        loop {
            let opcode = self.byte()?;
            match opcode {
                0x80 => {
                    // PROTO
                    let protocol = self.byte()?;
                    if protocol > 5 {
                        return Err(format!("pickle protocol {protocol} is unknown"));
                    }
                }
                0x95 => {
                    // FRAME: its length only groups the opcodes that follow.
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let value = i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
                    self.stack.push(Value::Int(value.into()));
                }
                b'K' => {
                    let value = self.byte()?;
                    self.stack.push(Value::Int(value.into()));
                }
                b'M' => {
                    let value = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
                    self.stack.push(Value::Int(value.into()));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of up to 16 bytes here.
                    let length = usize::from(self.byte()?);
                    if length > 16 {
                        return Err("an integer in the pickle has more than 128 bits".into());
                    }
                    let digits = self.take(length)?;
                    let mut value: i128 = 0;
                    for (i, &digit) in digits.iter().enumerate() {
                        value |= i128::from(digit) << (8 * i);
                    }
                    if length > 0 && length < 16 && digits[length - 1] & 0x80 != 0 {
                        value -= 1i128 << (8 * length);
                    }
                    self.stack.push(Value::Int(value));
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                b'X' => {
                    let length = self.u32()? as usize;
                    let text = self.text(length)?;
                    self.stack.push(Value::Str(text));
                }
                0x8c => {
                    let length = usize::from(self.byte()?);
                    let text = self.text(length)?;
                    self.stack.push(Value::Str(text));
                }
                b'T' | b'B' => {
                    let length = self.u32()? as usize;
                    self.take(length)?;
                    self.stack.push(Value::Bytes);
                }
                b'U' | b'C' => {
                    let length = usize::from(self.byte()?);
                    self.take(length)?;
                    self.stack.push(Value::Bytes);
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b't' => {
                    let items = self.since_mark()?;
                    self.stack.push(Self::nested(Value::Tuple(items))?);
                }
                b'l' => {
                    let items = self.since_mark()?;
                    self.stack.push(Self::nested(Value::List(items))?);
                }
                b'd' => {
                    let items = self.since_mark()?;
                    let dict = Value::Dict(pairs(items)?);
                    self.stack.push(Self::nested(dict)?);
                }
                0x85..=0x87 => {
                    let count = usize::from(opcode - 0x84);
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.stack.push(Self::nested(Value::Tuple(items))?);
                }
                b'q' => {
                    let index = self.byte()?;
                    self.memoize(index.into())?;
                }
                b'r' => {
                    let index = self.u32()?;
                    self.memoize(index)?;
                }
                0x94 => {
                    // MEMOIZE: the next free index.
                    let index =
                        u32::try_from(self.memo.len()).map_err(|_| "too many memo entries")?;
                    self.memoize(index)?;
                }
                b'h' => {
                    let index = self.byte()?;
                    self.recall(index.into())?;
                }
                b'j' => {
                    let index = self.u32()?;
                    self.recall(index)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.stack.push(Value::Global(format!("{module}.{name}")))
                        }
                        _ => return Err("a class is named by values that are not strings".into()),
                    }
                }
                b'Q' => {
                    let id = self.pop()?;
                    let value = persistent(id)?;
                    self.stack.push(value);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = call(callable, args)?;
                    self.stack.push(Self::nested(value)?);
                }
                0x81 => {
                    // NEWOBJ: cls.__new__(cls, *args), opaque unless a dict.
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let value = call(class, args)?;
                    self.stack.push(value);
                }
                b'b' => {
                    // BUILD: an object's state (a state dict's `_metadata`); not needed.
                    self.pop()?;
                    self.top()?;
                }
                b'a' => {
                    let item = Self::nested(self.pop()?)?;
                    match self.top()? {
                        Value::List(items) => items.push(item),
                        other => return Err(format!("the pickle appends to {}", other.describe())),
                    }
                }
                b'e' => {
                    let new = self.since_mark()?;
                    let new = new
                        .into_iter()
                        .map(Self::nested)
                        .collect::<Result<Vec<_>, _>>()?;
                    match self.top()? {
                        Value::List(items) => items.extend(new),
                        other => return Err(format!("the pickle appends to {}", other.describe())),
                    }
                }
                b's' => {
                    let value = Self::nested(self.pop()?)?;
                    let key = Self::nested(self.pop()?)?;
                    match self.top()? {
                        Value::Dict(items) => items.push((key, value)),
                        other => {
                            return Err(format!("the pickle sets an item of {}", other.describe()));
                        }
                    }
                }
                b'u' => {
                    let new = self.since_mark()?;
                    let new = new
                        .into_iter()
                        .map(Self::nested)
                        .collect::<Result<Vec<_>, _>>()?;
                    let new = pairs(new)?;
                    match self.top()? {
                        Value::Dict(items) => items.extend(new),
                        other => {
                            return Err(format!("the pickle sets items of {}", other.describe()));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "the pickle uses opcode 0x{other:02x}, which torch.save does not write"
                    ));
                }
            }
        }
    }
}

/// Alternating keys and values as pairs.
fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("the pickle gives a dict a key without a value".into());
    }
    let mut items = items.into_iter();
    let mut pairs = Vec::with_capacity(items.len() / 2);
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// What calling `callable` on `args` makes, for the calls torch.save writes; any other call is
/// an opaque value (nothing runs).
fn call(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(name) = callable else {
        return Err(format!("the pickle calls {}", callable.describe()));
    };
    let Value::Tuple(args) = args else {
        return Err(format!(
            "the pickle calls `{name}` with {} as its arguments",
            args.describe()
        ));
    };
    match name.as_str() {
        "collections.OrderedDict" | "builtins.dict" if args.is_empty() => {
            Ok(Value::Dict(Vec::new()))
        }
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => rebuild_tensor(args),
        // An nn.Parameter: its data.
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => args
            .into_iter()
            .next()
            .ok_or_else(|| "a parameter without its data".to_owned()),
        _ => Ok(Value::Opaque(name)),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
fn rebuild_tensor(args: Vec<Value>) -> Result<Value, String> {
    let mut args = args.into_iter();
    let (Some(Value::Storage { element, key }), Some(offset), Some(size), Some(stride)) =
        (args.next(), args.next(), args.next(), args.next())
    else {
        return Err(
            "a tensor is rebuilt from arguments that are not a storage, an offset, a size \
                    and a stride"
                .into(),
        );
    };
    let offset = index(&offset)?;
    let shape = indices(size)?;
    let stride = indices(stride)?;
    if shape.len() != stride.len() {
        return Err("a tensor's size and stride have different lengths".into());
    }
    Ok(Value::Tensor(Tensor {
        element,
        key,
        offset,
        shape,
        stride,
    }))
}

fn index(value: &Value) -> Result<usize, String> {
    match value {
        Value::Int(n) => usize::try_from(*n).map_err(|_| format!("{n} is not a size or offset")),
        other => Err(format!(
            "{} where a size or offset belongs",
            other.describe()
        )),
    }
}

fn indices(value: Value) -> Result<Vec<usize>, String> {
    match value {
        Value::Tuple(items) | Value::List(items) => items.iter().map(index).collect(),
        other => Err(format!(
            "{} where a tensor's size or stride belongs",
            other.describe()
        )),
    }
}

/// The storage a persistent id names: `('storage', storage class, key, location, numel, ...)`.
fn storage(id: Value) -> Result<Value, String> {
    let Value::Tuple(fields) = id else {
        return Err(format!("a persistent id is {}, not a tuple", id.describe()));
    };
    match fields.as_slice() {
        // The legacy layout's sixth field describes a view into another storage, which
        // torch.save wrote only for storages shared between views (never for a state dict's).
        [Value::Str(kind), _, _, _, _, view, ..]
            if kind == "storage" && !matches!(view, Value::None) =>
        {
            Err("a storage is a view of another storage, which is not read".into())
        }
        [Value::Str(kind), Value::Global(class), key, ..] if kind == "storage" => {
            let name = class.rsplit('.').next().unwrap_or(class);
            let element = Element::of_storage(name)
                .ok_or_else(|| format!("storages of type `{class}` are not read"))?;
            let key = match key {
                Value::Str(key) => key.clone(),
                Value::Int(key) => key.to_string(),
                other => return Err(format!("a storage key is {}", other.describe())),
            };
            Ok(Value::Storage { element, key })
        }
        _ => Err("a persistent id is not a storage's ('storage', type, key, ...)".into()),
    }
}

/// The root object and every storage's bytes, by key, of a zip-layout checkpoint.
fn read_zip(bytes: &[u8]) -> Result<(Value, HashMap<String, Vec<u8>>), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|error| format!("it is not a readable zip archive ({error})"))?;
    let names = archive
        .file_names()
        .map(|name| name.map(|name| name.into_owned()))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|error| format!("its zip directory cannot be read ({error})"))?;
    let pickle_name = names
        .iter()
        .find(|name| name.ends_with("data.pkl") && name.matches('/').count() <= 1)
        .ok_or("the zip archive has no data.pkl: it is not a torch.save checkpoint")?
        .clone();
    let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];
    let pickle = read_entry(&mut archive, &pickle_name, MAX_PICKLE_BYTES)?;
    let mut keys = Vec::new();
    let root = Unpickler::new(&pickle, 0).load(&mut |id| {
        let value = storage(id)?;
        if let Value::Storage { key, .. } = &value {
            keys.push(key.clone());
        }
        Ok(value)
    })?;
    let mut storages = HashMap::new();
    for key in keys {
        if storages.contains_key(&key) {
            continue;
        }
        let name = format!("{prefix}data/{key}");
        let data = read_entry(&mut archive, &name, bytes.len() as u64)?;
        storages.insert(key, data);
    }
    Ok((root, storages))
}

/// One entry of the archive, at most `limit` bytes.
fn read_entry(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let entry = archive
        .by_name(name)
        .map_err(|error| format!("the archive's `{name}` cannot be read ({error})"))?;
    if entry.size() > limit {
        return Err(format!(
            "the archive's `{name}` claims {} bytes, more than the file",
            entry.size()
        ));
    }
    let mut data = Vec::with_capacity(entry.size() as usize);
    entry
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|error| format!("the archive's `{name}` cannot be read ({error})"))?;
    Ok(data)
}

/// The root object and every storage's bytes, by key, of a legacy-layout checkpoint.
fn read_legacy(bytes: &[u8]) -> Result<(Value, HashMap<String, Vec<u8>>), String> {
    let mut position = 0;
    let mut next = |persistent: &mut dyn FnMut(Value) -> Result<Value, String>| {
        let mut unpickler = Unpickler::new(bytes, position);
        let value = unpickler.load(persistent);
        position = unpickler.position;
        value
    };
    let refuse = |_: Value| Err::<Value, String>("a persistent id outside the object".into());
    match next(&mut refuse.clone())? {
        Value::Int(LEGACY_MAGIC) => {}
        _ => return Err("it is a pickle, but not one torch.save wrote (no magic number)".into()),
    }
    match next(&mut refuse.clone())? {
        Value::Int(version) if version == i128::from(LEGACY_PROTOCOL) => {}
        other => return Err(format!("its legacy format version is {other:?}, not 1001")),
    }
    let system = next(&mut refuse.clone())?;
    if let Value::Dict(items) = &system {
        let little = items.iter().any(|(key, value)| {
            matches!((key, value), (Value::Str(k), Value::Bool(true)) if k == "little_endian")
        });
        if !little {
            return Err("it was saved on a big-endian machine, which is not read".into());
        }
    }
    let mut elements = HashMap::new();
    let root = next(&mut |id| {
        let value = storage(id)?;
        if let Value::Storage { element, key } = &value {
            elements.insert(key.clone(), *element);
        }
        Ok(value)
    })?;
    let Value::List(keys) = next(&mut refuse.clone())? else {
        return Err("the list of storage keys is missing".into());
    };
    let mut storages = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("a storage key is not a string".into());
        };
        let element = *elements
            .get(&key)
            .ok_or_else(|| format!("storage {key} is listed but no tensor uses it"))?;
        let count = bytes
            .get(position..position + 8)
            .ok_or("the file ends before a storage's length (it is truncated)")?;
        let count = u64::from_le_bytes(count.try_into().expect("8 bytes"));
        let length = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(element.bytes()))
            .filter(|&length| length <= bytes.len() - position - 8)
            .ok_or("a storage runs past the end of the file (it is truncated)")?;
        position += 8;
        storages.insert(key, bytes[position..position + length].to_vec());
        position += length;
    }
    Ok((root, storages))
}

/// The `key → tensor` pairs of the checkpoint's state dict.
fn state_dict(root: Value) -> Result<Vec<(String, Tensor)>, String> {
    let mut value = root;
    // Training checkpoints wrap the state dict; pycls's is under "model_state".
    loop {
        let Value::Dict(items) = value else {
            return Err(format!(
                "it holds {}, not a state dict (a dict of tensors)",
                value.describe()
            ));
        };
        let wrapped = items.iter().position(|(key, inner)| {
            matches!(key, Value::Str(k) if ["model_state", "state_dict", "model"].contains(&k.as_str()))
                && matches!(inner, Value::Dict(_))
        });
        match wrapped {
            Some(index) if !items.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) => {
                value = items.into_iter().nth(index).expect("found above").1;
            }
            _ => {
                value = Value::Dict(items);
                break;
            }
        }
    }
    let Value::Dict(items) = value else {
        unreachable!("the loop leaves a dict")
    };
    let mut tensors = Vec::with_capacity(items.len());
    for (key, item) in items {
        let Value::Str(key) = key else {
            return Err(format!(
                "a state dict key is {}, not a string",
                key.describe()
            ));
        };
        match item {
            Value::Tensor(tensor) => tensors.push((key, tensor)),
            other => {
                return Err(format!(
                    "the state dict's `{key}` is {}, not a tensor",
                    other.describe()
                ));
            }
        }
    }
    // DataParallel's `module.` or a wrapper's `model.`, when every key has it.
    for prefix in ["module.", "model."] {
        if !tensors.is_empty() && tensors.iter().all(|(key, _)| key.starts_with(prefix)) {
            for (key, _) in &mut tensors {
                key.drain(..prefix.len());
            }
        }
    }
    Ok(tensors)
}

/// The tensor's elements in row-major order, as the bytes of its safetensors dtype.
fn contiguous(tensor: &Tensor, data: &[u8]) -> Result<(Dtype, Vec<u8>), String> {
    let size = tensor.element.bytes();
    let count = tensor
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("its shape overflows")?;
    // The last element's index, which must lie inside the storage.
    let last = tensor
        .shape
        .iter()
        .zip(&tensor.stride)
        .try_fold(tensor.offset, |sum, (&d, &s)| {
            sum.checked_add(d.saturating_sub(1).checked_mul(s)?)
        })
        .ok_or("its strides overflow")?;
    if count > 0
        && (last + 1)
            .checked_mul(size)
            .is_none_or(|end| end > data.len())
    {
        return Err(format!(
            "it reaches element {last} of a storage of {} elements",
            data.len() / size
        ));
    }
    let mut out = Vec::with_capacity(count * size);
    let mut position = vec![0usize; tensor.shape.len()];
    for _ in 0..count {
        let element: usize = tensor.offset
            + position
                .iter()
                .zip(&tensor.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        let bytes = &data[element * size..(element + 1) * size];
        if tensor.element == Element::F64 {
            let value = f64::from_le_bytes(bytes.try_into().expect("8 bytes")) as f32;
            out.extend_from_slice(&value.to_le_bytes());
        } else {
            out.extend_from_slice(bytes);
        }
        for axis in (0..position.len()).rev() {
            position[axis] += 1;
            if position[axis] < tensor.shape[axis] {
                break;
            }
            position[axis] = 0;
        }
    }
    Ok((tensor.element.dtype(), out))
}

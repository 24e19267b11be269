//! `kaiyuan tokenize -m MODEL [--ids|--pieces] [--special] [--no-bos] TEXT`: shows the
//! tokens a model's own tokenizer makes of a text, so users can check what the model sees.

use std::path::PathBuf;

use super::model_file::ModelFile;

#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// The GGUF model whose tokenizer to use.
    #[arg(short, long)]
    pub model: PathBuf,
    /// Print only the token ids, space-separated.
    #[arg(long, conflicts_with = "pieces")]
    pub ids: bool,
    /// Print only the token pieces, one per line.
    #[arg(long)]
    pub pieces: bool,
    /// Recognise control tokens written in the text (e.g. `<|im_end|>`); by default they
    /// are tokenized as the plain characters they are made of.
    #[arg(long)]
    pub special: bool,
    /// Do not add the BOS/EOS tokens the model's metadata asks for.
    #[arg(long)]
    pub no_bos: bool,
    /// The text to tokenize.
    pub text: String,
}

pub fn run(args: &TokenizeArgs) -> anyhow::Result<()> {
    let model = ModelFile::open(&args.model)?;
    let tok = &model.tokenizer;
    let ids = if args.no_bos {
        tok.encode(&args.text, args.special)
    } else {
        tok.encode_with_bos_eos(&args.text, args.special)
    };
    if args.ids {
        let line: Vec<String> = ids.iter().map(u32::to_string).collect();
        println!("{}", line.join(" "));
        return Ok(());
    }
    for &id in &ids {
        let piece = model.token_text(Some(id)).unwrap_or_default();
        if args.pieces {
            println!("{piece:?}");
        } else {
            println!("{id:>8}  {piece:?}");
        }
    }
    if !args.pieces {
        eprintln!("{} tokens", ids.len());
    }
    Ok(())
}

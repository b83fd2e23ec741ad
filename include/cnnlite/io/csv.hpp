// CSV results for other tools (pandas, spreadsheets, the tests): a header row, rows of strings,
// integers and floating-point numbers, RFC 4180 quoting, written atomically; and a small reader.
//
// Floating-point cells are printed in the shortest form that reads back to the identical value
// (std::to_chars), so no precision is ever lost; a float prints as a float ("0.1" for 0.1f), a
// double as a double. Rows end in "\n" (RFC 4180 says CRLF; every CSV reader takes both).
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "cnnlite/core/error.hpp"
#include "cnnlite/core/files.hpp"

namespace cnnlite {

/// One CSV field: text (quoted on output when needed) or a number (never quoted).
class CsvCell {
public:
    /// A text cell.
    CsvCell(std::string text) : text_(std::move(text)), is_text_(true) {}
    /// A text cell.
    CsvCell(const char* text) : CsvCell(std::string(text)) {}
    /// A text cell.
    CsvCell(std::string_view text) : CsvCell(std::string(text)) {}
    /// An integer cell (any integer type except bool).
    template <class T, std::enable_if_t<std::is_integral<T>::value && !std::is_same<T, bool>::value, int> = 0>
    CsvCell(T value) : text_(std::to_string(value)) {}
    /// A floating-point cell, shortest round-trip form ("inf", "-inf", "nan" for non-finite).
    CsvCell(float value) : text_(shortest(value)) {}
    /// A floating-point cell, shortest round-trip form.
    CsvCell(double value) : text_(shortest(value)) {}
    // A bool would silently print as 0/1; say which you mean with an int or a string.
    CsvCell(bool) = delete;

    /// The field as written, before quoting.
    const std::string& text() const { return text_; }
    /// Whether the cell is text (quoted when needed) rather than a number.
    bool is_text() const { return is_text_; }

private:
    template <class F>
    static std::string shortest(F value) {
        char buffer[64];
        const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
        return std::string(buffer, result.ptr);
    }

    std::string text_;
    bool is_text_ = false;
};

namespace detail {

/// Appends `field` to `out`, quoted per RFC 4180 when it holds a comma, quote or line break.
inline void append_csv_field(std::string& out, std::string_view field) {
    if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
        out += field;
        return;
    }
    out += '"';
    for (char c : field) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

}  // namespace detail

/// Writes a CSV file row by row into a temp file; close() puts it in place atomically.
/// Destroyed without close(), it leaves no file behind (and the old one untouched).
class CsvWriter {
public:
    /// Starts `path` (its folder must exist) with the given header row.
    CsvWriter(const std::string& path, std::vector<std::string> header)
        : file_(path), columns_(header.size()) {
        check(!header.empty(), "CSV file '", path, "': the header has no columns");
        std::string line;
        for (std::size_t i = 0; i < header.size(); ++i) {
            if (i) line += ',';
            detail::append_csv_field(line, header[i]);
        }
        line += '\n';
        file_.write(line);
    }

    /// Appends one row; it must have as many cells as the header has columns.
    void add_row(const std::vector<CsvCell>& cells) {
        check(cells.size() == columns_, "CSV file '", file_.path(), "': row ", rows_ + 1, " has ", cells.size(),
              " cells but the header has ", columns_, " columns");
        std::string line;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            if (i) line += ',';
            if (cells[i].is_text())
                detail::append_csv_field(line, cells[i].text());
            else
                line += cells[i].text();
        }
        line += '\n';
        file_.write(line);
        ++rows_;
    }

    /// Puts the finished file in place (atomically).
    void close() { file_.commit(); }

    /// Data rows added so far (the header not counted).
    std::size_t rows() const { return rows_; }

private:
    AtomicFileWriter file_;
    std::size_t columns_ = 0;
    std::size_t rows_ = 0;
};

/// Writes a whole CSV file (header and rows) atomically.
inline void write_csv(const std::string& path, const std::vector<std::string>& header,
                      const std::vector<std::vector<CsvCell>>& rows) {
    CsvWriter writer(path, header);
    for (const auto& row : rows) writer.add_row(row);
    writer.close();
}

/// Splits CSV text (RFC 4180; LF or CRLF line ends) into rows of fields. `source` names the
/// text in error messages (an unterminated quote, a stray character after a closing quote).
inline std::vector<std::vector<std::string>> parse_csv(std::string_view text, const std::string& source) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    std::size_t line = 1;
    std::size_t i = 0;
    const std::size_t n = text.size();
    while (i < n) {
        // One field per iteration; `i` is at its first character.
        if (text[i] == '"') {
            const std::size_t start_line = line;
            ++i;
            for (;;) {
                check(i < n, "CSV ", source, ": quoted field opened on line ", start_line, " is never closed");
                if (text[i] == '"') {
                    if (i + 1 < n && text[i + 1] == '"') {
                        field += '"';
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                if (text[i] == '\n') ++line;
                field += text[i++];
            }
            if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
                fail("CSV ", source, ": line ", line, ": unexpected character '", text[i], "' after a closing quote");
        } else {
            while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
                check(text[i] != '"', "CSV ", source, ": line ", line, ": quote inside an unquoted field");
                field += text[i++];
            }
        }
        row.push_back(std::move(field));
        field.clear();
        if (i < n && text[i] == ',') {
            ++i;
            if (i == n) row.emplace_back();  // "a," at the very end: a last, empty field
            continue;
        }
        // End of a row: "\n", "\r\n" or end of text.
        if (i < n && text[i] == '\r') {
            ++i;
            check(i < n && text[i] == '\n', "CSV ", source, ": line ", line, ": carriage return without line feed");
        }
        if (i < n) {
            ++i;
            ++line;
        }
        rows.push_back(std::move(row));
        row.clear();
    }
    return rows;
}

/// Reads a CSV file into rows of fields (strings); see parse_csv.
inline std::vector<std::vector<std::string>> read_csv(const std::string& path) {
    InputFile file(path, "CSV file");
    check(file.size() <= (std::uint64_t(1) << 32), "CSV file '", path, "': ", file.size(),
          " bytes is more than this reader is meant for");
    const std::string text = file.read_string(static_cast<std::size_t>(file.size()), 0);
    return parse_csv(text, "file '" + path + "'");
}

}  // namespace cnnlite
